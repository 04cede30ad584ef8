#include "rate.h"

#include <stdio.h>

uint64_t rate_start(struct rate *r, uint64_t now_ns, double seconds)
{
    r->start_ns = r->sample_ns = now_ns ? now_ns : 1;
    r->end_ns = r->start_ns + (uint64_t)(seconds * 1e9);
    r->sample_bytes = r->bytes = 0;
    r->nsamples = 0;
    return r->end_ns;
}

void rate_add(struct rate *r, uint64_t bytes, uint64_t now_ns)
{
    if (!r->start_ns)
        return;
    /* Close the samples whose second is over (a silent second is a 0). */
    while (now_ns - r->sample_ns >= 1000000000ull) {
        if (r->nsamples < RATE_MAX_SAMPLES)
            r->samples[r->nsamples++] = (double)r->sample_bytes;
        r->sample_bytes = 0;
        r->sample_ns += 1000000000ull;
    }
    r->sample_bytes += bytes;
    r->bytes += bytes;
}

void rate_print(struct rate *r, const char *libos, size_t size)
{
    rate_add(r, 0, r->end_ns);
    double secs = r->start_ns ? (double)(r->end_ns - r->start_ns) / 1e9 : 0;
    printf("{\"libos\":\"%s\",\"proto\":\"tcp\",\"mode\":\"stream\",\"size\":%zu,\"bytes\":%llu,\"seconds\":%.3f,"
           "\"bytes_per_s\":%.0f,\"samples_bytes_per_s\":[",
           libos, size, (unsigned long long)r->bytes, secs, secs > 0 ? (double)r->bytes / secs : 0.0);
    for (uint32_t i = 0; i < r->nsamples; i++)
        printf("%s%.0f", i ? "," : "", r->samples[i]);
    printf("]}\n");
    fflush(stdout);
}
