module tricolor.perf/gobench

go 1.19
