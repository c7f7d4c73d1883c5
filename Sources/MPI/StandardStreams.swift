// C's stdio streams, which MPI itself does not touch: the buffering of standard output and the
// last line a rank writes before an abort ends it.
//
// Glibc's `stdout` and `stderr` are global variables that Swift 6 reads as shared mutable state;
// `@preconcurrency` accepts them here, where they are only passed to stdio, which locks each stream.
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Line-buffered stdout, so that progress reaches a batch system's .out file while a job runs.
func makeStandardOutputLineBuffered() {
    setvbuf(stdout, nil, _IOLBF, 0)
}

/// Writes a whole line to stderr and flushes both streams: the line is out before an abort ends the process.
func writeErrorLine(_ line: String) {
    fflush(stdout)
    fputs(line + "\n", stderr)
    fflush(stderr)
}
