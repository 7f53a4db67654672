module reseau/benches/go

go 1.19
