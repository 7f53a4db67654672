module reseau.invalid/stress/go

go 1.19
