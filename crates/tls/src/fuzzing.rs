//! Socket-free entry points for fuzzing (cargo feature `fuzzing`, off by
//! default; the targets live in `fuzz/` at the repository root).
//!
//! [`server_input`] and [`client_input`] build the same `SSL` a [`Conn`]
//! would (same context, same settings, same memory BIOs), then play the
//! role of the socket: they feed arbitrary bytes as the peer's ciphertext,
//! in chunks whose sizes come from the input itself, and drive the same
//! sans-I/O engine `Conn` drives (handshake, then reads; output drained
//! after every call) until it wants more input than there is, or fails.
//! They must never panic, leak or crash, whatever the bytes; the few
//! `assert!`s here are invariants of the engine that a fuzzer should
//! report if they break.
//!
//! Input layout: the first byte steers the chunking and the read size
//! (see [`Schedule`]); the rest is the peer's byte stream.
//!
//! [`transcript`] runs a real client and server against each other in
//! memory and records what each sent: seeds for the fuzzers (a ClientHello
//! flight for the server target, a ServerHello flight for the client's).
//!
//! [`Conn`]: crate::Conn

use crate::config::{Config, Version};
use crate::engine::{Engine, Progress, Step};
use crate::error::Error;

/// At most this much of the engine's output (and decrypted plaintext) is
/// kept in a [`Report`]; the rest is counted only.
const KEEP: usize = 1 << 20;
/// Reads per fed chunk before the driver gives up on an engine that keeps
/// returning data (it cannot, from a bounded input; this only bounds the
/// loop should an engine misbehave).
const MAX_READS: usize = 1 << 16;

/// What one fuzz input did to the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The handshake finished.
    pub handshake_complete: bool,
    /// The version negotiated, once the handshake finished.
    pub version: Option<Version>,
    /// Why the engine failed (OpenSSL's error text), if it did.
    pub error: Option<String>,
    /// The peer sent close_notify.
    pub peer_closed: bool,
    /// Chunks of input fed to the engine.
    pub chunks_fed: usize,
    /// Ciphertext the engine produced for the peer (the first MiB).
    pub output: Vec<u8>,
    /// How much ciphertext the engine produced in all.
    pub output_len: usize,
    /// Plaintext decrypted from the input (the first MiB).
    pub plaintext: Vec<u8>,
    /// How much plaintext was decrypted in all.
    pub plaintext_len: usize,
    /// The SNI name the engine saw (server) or sent (client).
    pub server_name: Option<String>,
    /// How many certificates the peer presented.
    pub peer_certificates: usize,
}

/// Feed `bytes` to a server engine configured by `config`, as a client
/// would send them. `Err` only when `config` cannot make a server (no
/// certificate, unreadable files): the input never causes one.
pub fn server_input(config: &Config, bytes: &[u8]) -> Result<Report, Error> {
    Ok(drive(Engine::server(config)?, bytes))
}

/// Feed `bytes` to a client engine configured by `config` (its server name,
/// if any, is the name verified and sent as SNI), as a server would send
/// them. `Err` only when `config` cannot make a client.
pub fn client_input(config: &Config, bytes: &[u8]) -> Result<Report, Error> {
    Ok(drive(Engine::client(config, None, "fuzz")?, bytes))
}

/// How an input is cut into chunks and read, from its first byte `ctl`:
///
/// - bits 0–2: the largest chunk: everything at once, or 1, 2, 5, 16, 64,
///   300, 1500 bytes;
/// - bits 3–7: the seed of the generator that draws each chunk's size
///   between 1 and that largest;
/// - bits 6–7: the plaintext read buffer: 16 KiB, 1, 7 or 1000 bytes.
#[derive(Debug, Clone)]
pub struct Schedule<'a> {
    rest: &'a [u8],
    limit: Option<usize>,
    state: u32,
    read_size: usize,
}

impl<'a> Schedule<'a> {
    /// The schedule for `bytes` (the control byte, then the stream).
    pub fn new(bytes: &'a [u8]) -> Schedule<'a> {
        const LIMITS: [Option<usize>; 8] = [None, Some(1), Some(2), Some(5), Some(16), Some(64), Some(300), Some(1500)];
        const READS: [usize; 4] = [16 * 1024, 1, 7, 1000];
        let (ctl, rest) = bytes.split_first().map_or((0, &[][..]), |(c, r)| (*c, r));
        Schedule {
            rest,
            limit: LIMITS[usize::from(ctl & 7)],
            state: 0x9e37_79b9 ^ u32::from(ctl >> 3),
            read_size: READS[usize::from(ctl >> 6)],
        }
    }

    /// The plaintext read buffer size.
    pub fn read_size(&self) -> usize {
        self.read_size
    }
}

impl<'a> Iterator for Schedule<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let n = match self.limit {
            None => self.rest.len(),
            Some(limit) => {
                // xorshift32: cheap, deterministic, never stuck at zero.
                self.state ^= self.state << 13;
                self.state ^= self.state >> 17;
                self.state ^= self.state << 5;
                1 + self.state as usize % limit
            }
        };
        let (chunk, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        Some(chunk)
    }
}

/// Whether the driver should feed more input or stop.
enum Next {
    Feed,
    Stop,
}

fn drive(mut engine: Engine, bytes: &[u8]) -> Report {
    let mut report = Report::default();
    let schedule = Schedule::new(bytes);
    let mut buf = vec![0u8; schedule.read_size()];
    // A client speaks first: its ClientHello leaves before any input.
    let mut next = advance(&mut engine, &mut report, &mut buf);
    for chunk in schedule {
        if let Next::Stop = next {
            break;
        }
        engine.feed(chunk);
        report.chunks_fed += 1;
        next = advance(&mut engine, &mut report, &mut buf);
    }
    if report.handshake_complete && report.error.is_none() {
        // As `Conn::close` does: queue close_notify.
        if let Step::Failed(e) = engine.close_notify() {
            report.error = Some(e.message);
        }
        collect(&mut engine, &mut report);
    }
    // `connection_state` must cope with whatever state the input left the
    // engine in, finished or not.
    let _ = engine.connection_state();
    report.server_name = engine.server_name();
    report.peer_certificates = engine.peer_certificates().len();
    report
}

/// Run the handshake, then read, until the engine wants more input (feed
/// it) or is done for (stop). Output is drained after every call, as
/// `Conn` does.
fn advance(engine: &mut Engine, report: &mut Report, buf: &mut [u8]) -> Next {
    while !report.handshake_complete {
        let step = engine.handshake();
        collect(engine, report);
        match step {
            // Sent (collected) above: go on at once, as `Conn` does.
            // No resolver in the fuzz configurations: never suspended.
            Step::Done(Progress::Flight | Progress::Certificate) => {}
            Step::Done(Progress::Finished) => {
                assert!(engine.is_handshake_done(), "handshake reported done but the engine is not");
                report.handshake_complete = true;
                report.version = engine.connection_state().version;
                assert!(report.version.is_some(), "handshake finished on an unsupported version");
                // Exercise the write path once, as an application would.
                match engine.write(b"reseau fuzz\n", &mut Vec::new()) {
                    Step::Done(n) => assert_eq!(n, 12, "short write"),
                    Step::Failed(e) => {
                        report.error = Some(e.message);
                        return Next::Stop;
                    }
                    Step::NeedInput | Step::PeerClosed => {}
                }
                collect(engine, report);
            }
            Step::NeedInput => return Next::Feed,
            Step::PeerClosed => {
                report.peer_closed = true;
                return Next::Stop;
            }
            Step::Failed(e) => {
                report.error = Some(e.message);
                return Next::Stop;
            }
        }
    }
    for _ in 0..MAX_READS {
        let step = engine.read(buf);
        collect(engine, report);
        match step {
            Step::Done(n) => {
                assert!(n > 0 && n <= buf.len(), "read {n} bytes into a buffer of {}", buf.len());
                keep(&mut report.plaintext, &buf[..n]);
                report.plaintext_len += n;
            }
            Step::NeedInput => return Next::Feed,
            Step::PeerClosed => {
                report.peer_closed = true;
                return Next::Stop;
            }
            Step::Failed(e) => {
                report.error = Some(e.message);
                return Next::Stop;
            }
        }
    }
    Next::Stop
}

/// Drain the engine's output into the report, as a socket would take it.
fn collect(engine: &mut Engine, report: &mut Report) {
    let n = engine.output().len();
    report.output_len += n;
    keep(&mut report.output, engine.output());
    engine.consume(n);
    assert!(engine.output().is_empty(), "output left behind after draining");
}

fn keep(into: &mut Vec<u8>, data: &[u8]) {
    let room = KEEP.saturating_sub(into.len());
    into.extend_from_slice(&data[..data.len().min(room)]);
}

/// What a real client and server sent each other, flight by flight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    /// The client's flights: ClientHello first, then its Finished (and,
    /// TLS 1.2, key exchange), a request, close_notify.
    pub client_flights: Vec<Vec<u8>>,
    /// The server's flights: ServerHello (with its certificate) first, then
    /// any tickets, a reply, close_notify.
    pub server_flights: Vec<Vec<u8>>,
    /// The version negotiated.
    pub version: Option<Version>,
}

/// Run a handshake between a client configured by `client` and a server
/// configured by `server`, in memory, then one request, one reply and
/// close_notify each way; record every flight. `Err` with the reason if
/// either side fails.
pub fn transcript(client: &Config, server: &Config) -> Result<Transcript, String> {
    let mut c = Engine::client(client, None, "transcript").map_err(|e| e.to_string())?;
    let mut s = Engine::server(server).map_err(|e| e.to_string())?;
    let mut t = Transcript::default();
    let (mut c_done, mut s_done) = (false, false);
    for _ in 0..16 {
        if c_done && s_done {
            break;
        }
        if !c_done {
            c_done = step(&mut c, "client")?;
        }
        pass(&mut c, &mut s, &mut t.client_flights);
        if !s_done {
            s_done = step(&mut s, "server")?;
        }
        pass(&mut s, &mut c, &mut t.server_flights);
    }
    if !(c_done && s_done) {
        return Err("the handshake did not finish".into());
    }
    t.version = c.connection_state().version;
    exchange(&mut c, &mut s, b"GET / HTTP/1.0\r\n\r\n", &mut t.client_flights)?;
    // The server's read above also consumed any tickets its handshake sent;
    // the client reads them along with the reply.
    exchange(&mut s, &mut c, b"HTTP/1.0 200 OK\r\n\r\n", &mut t.server_flights)?;
    close_notify(&mut c, &mut s, &mut t.client_flights)?;
    close_notify(&mut s, &mut c, &mut t.server_flights)?;
    Ok(t)
}

/// One handshake step: `Ok(true)` once finished.
fn step(engine: &mut Engine, who: &str) -> Result<bool, String> {
    match engine.handshake() {
        Step::Done(Progress::Finished) => Ok(true),
        Step::Done(Progress::Flight | Progress::Certificate) | Step::NeedInput => Ok(false),
        Step::PeerClosed => Err(format!("{who}: peer closed during the handshake")),
        Step::Failed(e) => Err(format!("{who}: {}", e.message)),
    }
}

/// Move `from`'s output to `to`, recording it as a flight.
fn pass(from: &mut Engine, to: &mut Engine, flights: &mut Vec<Vec<u8>>) {
    let n = from.output().len();
    if n > 0 {
        to.feed(from.output());
        flights.push(from.output().to_vec());
        from.consume(n);
    }
}

/// `from` sends close_notify to `to`.
fn close_notify(from: &mut Engine, to: &mut Engine, flights: &mut Vec<Vec<u8>>) -> Result<(), String> {
    if let Step::Failed(e) = from.close_notify() {
        return Err(e.message);
    }
    pass(from, to, flights);
    Ok(())
}

/// `from` writes `msg`; `to` reads it all back.
fn exchange(from: &mut Engine, to: &mut Engine, msg: &[u8], flights: &mut Vec<Vec<u8>>) -> Result<(), String> {
    match from.write(msg, &mut Vec::new()) {
        Step::Done(n) if n == msg.len() => {}
        other => return Err(format!("write: {other:?}")),
    }
    pass(from, to, flights);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < msg.len() {
        match to.read(&mut buf) {
            Step::Done(n) => got.extend_from_slice(&buf[..n]),
            other => return Err(format!("read: {other:?}")),
        }
    }
    // Answers to what was read (none expected) go back the other way.
    let mut ignored = Vec::new();
    pass(to, from, &mut ignored);
    if got == msg { Ok(()) } else { Err("the plaintext came back different".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_covers_the_input_in_order() {
        let data: Vec<u8> = (0..=255).cycle().take(5000).collect();
        for ctl in 0..=255u8 {
            let mut input = vec![ctl];
            input.extend_from_slice(&data);
            let chunks: Vec<&[u8]> = Schedule::new(&input).collect();
            assert!(chunks.iter().all(|c| !c.is_empty()));
            assert_eq!(chunks.concat(), data, "ctl {ctl}");
            if ctl & 7 == 1 {
                assert_eq!(chunks.len(), data.len());
            }
        }
        assert_eq!(Schedule::new(&[]).count(), 0);
        assert_eq!(Schedule::new(&[7]).count(), 0);
    }

    use crate::engine::tests::{client_config, server_config};

    #[test]
    fn transcripts_replay_into_the_entry_points() {
        for (max, want) in [(None, Version::Tls13), (Some(Version::Tls12), Version::Tls12)] {
            let (client, server) = (client_config(max), server_config(max));
            let t = transcript(&client, &server).expect("in-memory handshake");
            assert_eq!(t.version, Some(want));
            assert!(t.client_flights.len() >= 3 && t.server_flights.len() >= 3, "{t:?}");
            // A real ClientHello gets a real ServerHello flight back, at
            // every chunking; the rest of the recorded flights belong to
            // another handshake and must fail cleanly.
            let client_stream = t.client_flights.concat();
            let server_stream = t.server_flights.concat();
            for ctl in [0u8, 1, 3, 0x46, 0xff] {
                let mut input = vec![ctl];
                input.extend_from_slice(&client_stream);
                let r = server_input(&server, &input).unwrap();
                assert!(!r.handshake_complete && r.output_len > 0, "{r:?}");
                assert_eq!(r.server_name.as_deref(), Some("localhost"));
                let mut input = vec![ctl];
                input.extend_from_slice(&server_stream);
                let r = client_input(&client, &input).unwrap();
                assert!(!r.handshake_complete && r.error.is_some(), "{r:?}");
                assert!(r.output.starts_with(&[0x16, 0x03]), "a ClientHello record first");
            }
        }
    }

    #[test]
    fn garbage_and_nothing_fail_cleanly() {
        let (client, server) = (client_config(None), server_config(None));
        let r = server_input(&server, &[]).unwrap();
        assert_eq!(r, Report::default());
        let r = client_input(&client, &[]).unwrap();
        assert!(r.output_len > 0 && r.error.is_none() && r.chunks_fed == 0);
        for junk in [&b"\x00GET / HTTP/1.1\r\n\r\n"[..], &[0x01, 0x16, 0x03, 0x01, 0xff, 0xff], &[0x80; 300]] {
            for r in [server_input(&server, junk).unwrap(), client_input(&client, junk).unwrap()] {
                assert!(!r.handshake_complete, "{r:?}");
            }
        }
        let e = server_input(&Config::builder().build().unwrap(), &[]).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
    }
}
