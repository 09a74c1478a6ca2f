/*
 * Shifts the wall clock of a process by an offset read from a file at every call, leaving the
 * monotonic clocks alone: a clock step without root and without touching the machine's clock.
 * Tests load it with LD_PRELOAD into `walship replicate` and write the offset (milliseconds, may
 * be negative) to the file named by WALSHIP_TEST_CLOCK_OFFSET_FILE.
 *
 * Why not libfaketime (FAKETIME_DONT_FAKE_MONOTONIC=1)? Preloaded, it leaves a Swift program's
 * CommandLine.arguments empty on this platform (Debian 12, Swift 6.3.1: measured with a one-line
 * program), so walship would see no subcommand at all.
 *
 * Built by WalshipTesting's WallClockShift with: gcc -shared -fPIC wallclock_shift.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long offset_ms(void) {
    const char *path = getenv("WALSHIP_TEST_CLOCK_OFFSET_FILE");
    if (path == NULL) return 0;
    FILE *file = fopen(path, "r");
    if (file == NULL) return 0;
    long long value = 0;
    if (fscanf(file, "%lld", &value) != 1) value = 0;
    fclose(file);
    return value;
}

static void shift(struct timespec *time) {
    long long ns = (long long)time->tv_sec * 1000000000LL + time->tv_nsec + offset_ms() * 1000000LL;
    time->tv_sec = ns / 1000000000LL;
    time->tv_nsec = ns % 1000000000LL;
    if (time->tv_nsec < 0) {
        time->tv_nsec += 1000000000LL;
        time->tv_sec -= 1;
    }
}

int clock_gettime(clockid_t clock, struct timespec *time) {
    static int (*real)(clockid_t, struct timespec *) = NULL;
    if (real == NULL) real = dlsym(RTLD_NEXT, "clock_gettime");
    int result = real(clock, time);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) shift(time);
    return result;
}

int gettimeofday(struct timeval *restrict value, void *restrict zone) {
    struct timespec time;
    int result = clock_gettime(CLOCK_REALTIME, &time);
    if (result == 0 && value != NULL) {
        value->tv_sec = time.tv_sec;
        value->tv_usec = time.tv_nsec / 1000;
    }
    (void)zone;
    return result;
}

time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out != NULL) *out = now.tv_sec;
    return now.tv_sec;
}
