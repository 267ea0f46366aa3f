/* apiq.c: sequential query latency of the Sextant API: GETs each URL of a file in turn, prints percentiles. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_URLS 100000

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    *(size_t *)u += s * n;
    return s * n;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Loopback only: the bench never sends load elsewhere. */
static int local_url(const char *u)
{
    const char *h = strstr(u, "://");
    if (!h) return 0;
    h += 3;
    return strncmp(h, "127.0.0.1", 9) == 0 || strncmp(h, "localhost", 9) == 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: apiq --urls FILE --token TOKEN [--cacert FILE] [--samples N] [--name NAME] [--max-seconds S]\n"
               "GETs the URLs of FILE (one a line, cycled) N times one after another (default 200)\n"
               "with Authorization: Bearer TOKEN (stopping early after S s); prints one JSON line: p50/p99/max ms, statuses.\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"urls", required_argument, NULL, 'u'},   {"token", required_argument, NULL, 't'},
                                       {"cacert", required_argument, NULL, 'c'}, {"samples", required_argument, NULL, 'n'},
                                       {"name", required_argument, NULL, 'N'},   {"help", no_argument, NULL, 'h'},
                                       {"max-seconds", required_argument, NULL, 'm'},
                                       {NULL, 0, NULL, 0}};
    const char *file = NULL, *token = NULL, *ca = NULL, *name = "q";
    double max_s = 0;
    int samples = 200, ch, nurls = 0, ok = 0, other = 0, errs = 0;
    char **urls, line[8192], auth[1024];
    size_t bytes = 0;

    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'u': file = optarg; break;
        case 't': token = optarg; break;
        case 'c': ca = optarg; break;
        case 'N': name = optarg; break;
        case 'n': samples = atoi(optarg); break;
        case 'm': max_s = atof(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!file || !token || samples < 1 || samples > 1000000) {
        usage(stderr);
        return 2;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "apiq: %s: %s\n", file, strerror(errno));
        return 1;
    }
    urls = calloc(MAX_URLS, sizeof(*urls));
    while (nurls < MAX_URLS && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        if (!local_url(line)) {
            fprintf(stderr, "apiq: refusing %s: only 127.0.0.1 or localhost\n", line);
            return 2;
        }
        urls[nurls++] = strdup(line);
    }
    fclose(f);
    if (nurls == 0) {
        fprintf(stderr, "apiq: no URL in %s\n", file);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    hdr = curl_slist_append(hdr, auth);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bytes);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (ca) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    /* Warm the connection (TLS handshake) so it is not in the first sample. */
    curl_easy_setopt(c, CURLOPT_URL, urls[0]);
    curl_easy_perform(c);
    double *ms = calloc((size_t)samples, sizeof(double));
    int n = 0;
    bytes = 0;
    double spent = 0;
    for (int i = 0; i < samples && (max_s <= 0 || spent < max_s); i++) {
        long code = 0;
        curl_off_t t = 0;
        curl_easy_setopt(c, CURLOPT_URL, urls[i % nurls]);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) {
            errs++;
            if (errs == 1) fprintf(stderr, "apiq: %s: %s\n", urls[i % nurls], curl_easy_strerror(rc));
            continue;
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &t);
        if (code == 200) ok++;
        else {
            other++;
            if (other == 1) fprintf(stderr, "apiq: %s: HTTP %ld\n", urls[i % nurls], code);
        }
        ms[n++] = (double)t / 1000.0;
        spent += (double)t / 1e6;
    }
    qsort(ms, (size_t)n, sizeof(double), cmp_d);
    printf("{\"name\":\"%s\",\"samples\":%d,\"ok\":%d,\"other\":%d,\"errors\":%d,\"p50_ms\":%.1f,\"p99_ms\":%.1f,"
           "\"max_ms\":%.1f,\"avg_bytes\":%zu}\n",
           name, n, ok, other, errs, n ? pct(ms, n, 0.5) : 0, n ? pct(ms, n, 0.99) : 0, n ? ms[n - 1] : 0,
           n ? bytes / (size_t)n : 0);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return errs || other ? 1 : 0;
}
