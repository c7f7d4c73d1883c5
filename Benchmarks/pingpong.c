/* Reference ping-pong written directly against MPI: the baseline the Swift layer is compared with.
 * Same protocol as Benchmarks/PingPong/main.swift: for each size, warm up, then time `reps`
 * round trips between ranks 0 and 1 and print the median one-way time of `trials` trials. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int provided, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const long sizes[] = {8, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
    const int trials = 7;
    char *buffer = malloc(67108864);
    memset(buffer, 1, 67108864);
    if (rank == 0) printf("bytes,one_way_us,MB_per_s\n");
    long largest = argc > 1 ? atol(argv[1]) : 67108864;  /* optional: stop after this size */
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0] && sizes[s] <= largest; s++) {
        long n = sizes[s];
        int reps = n <= 65536 ? 2000 : (n <= 1048576 ? 200 : 20);
        double samples[16];
        for (int t = -1; t < trials; t++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double start = MPI_Wtime();
            for (int i = 0; i < reps; i++) {
                if (rank == 0) {
                    MPI_Send(buffer, (int)n, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
                    MPI_Recv(buffer, (int)n, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                } else if (rank == 1) {
                    MPI_Recv(buffer, (int)n, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                    MPI_Send(buffer, (int)n, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
                }
            }
            if (t >= 0) samples[t] = (MPI_Wtime() - start) / (2.0 * reps);
        }
        qsort(samples, trials, sizeof(double), compare);
        double median = samples[trials / 2];
        if (rank == 0) printf("%ld,%.3f,%.1f\n", n, median * 1e6, n / median / 1e6);
    }
    free(buffer);
    MPI_Finalize();
    return 0;
}
