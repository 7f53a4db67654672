// The Go contender of reseau-bench's green-thread rows: the same echo and
// idle workloads as the Rust contenders, goroutines on both ends, in one
// process. Built and run by reseau-bench when `go` is on the PATH.
//
//	echo CONNS MSGS   prints: msgs_per_sec p99_us cpu_ms_per_1k
//	idle CONNS        prints: rss_bytes_per_conn os_threads
//	http ADDR         an HTTP server (http.go)
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const msg = 64

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func serve(l net.Listener, deadline bool) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, msg)
			for {
				if deadline {
					c.SetReadDeadline(time.Now().Add(60 * time.Second))
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}(c)
	}
}

func echo(conns, msgs int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go serve(l, false)
	addr := l.Addr().String()
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	type talk struct {
		lat          []uint32
		began, ended time.Time
	}
	talks := make([]talk, conns)
	ready.Add(conns)
	done.Add(conns)
	for i := 0; i < conns; i++ {
		go func(i int) {
			defer done.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				panic(err)
			}
			defer c.Close()
			buf := make([]byte, msg)
			c.Write(buf)
			if _, err := io.ReadFull(c, buf); err != nil {
				panic(err)
			}
			ready.Done()
			<-start
			lat := make([]uint32, 0, msgs)
			began := time.Now()
			for j := 0; j < msgs; j++ {
				t := time.Now()
				if _, err := c.Write(buf); err != nil {
					panic(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					panic(err)
				}
				lat = append(lat, uint32(time.Since(t).Microseconds()))
			}
			talks[i] = talk{lat, began, time.Now()}
		}(i)
	}
	ready.Wait()
	c0 := cpu()
	close(start)
	done.Wait()
	used := cpu() - c0
	l.Close()
	var all []uint32
	first, last := talks[0].began, talks[0].ended
	for _, t := range talks {
		all = append(all, t.lat...)
		if t.began.Before(first) {
			first = t.began
		}
		if t.ended.After(last) {
			last = t.ended
		}
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	p99 := all[len(all)*99/100]
	n := float64(len(all))
	fmt.Printf("%f %d %f\n", n/last.Sub(first).Seconds(), p99, used.Seconds()*1e3/(n/1e3))
}

func rss() int64 {
	b, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func threads() int {
	entries, _ := os.ReadDir("/proc/self/task")
	return len(entries)
}

func idle(conns int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	var blocked int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				c.SetReadDeadline(time.Now().Add(60 * time.Second))
				atomic.AddInt64(&blocked, 1)
				buf := make([]byte, msg)
				c.Read(buf)
				c.Close()
			}(c)
		}
	}()
	before := rss()
	clients := make([]net.Conn, 0, conns)
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			panic(err)
		}
		clients = append(clients, c)
	}
	for atomic.LoadInt64(&blocked) < int64(conns) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let every reader reach its read
	fmt.Printf("%d %d\n", (rss()-before)/int64(conns), threads())
	for _, c := range clients {
		c.Close()
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: echo (echo CONNS MSGS | idle CONNS)")
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Args[2])
	switch os.Args[1] {
	case "echo":
		m, _ := strconv.Atoi(os.Args[3])
		echo(n, m)
	case "idle":
		idle(n)
	case "http":
		httpServe(os.Args[2])
	default:
		os.Exit(2)
	}
}
