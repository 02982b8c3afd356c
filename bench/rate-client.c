// rate-client.c: a constant-rate (open-loop) HTTP/1.1 load generator for bench/rt.ts.
//
// Request k is *scheduled* at t0 + k/rate, whatever the server does. At each moment every
// request whose time has come is sent on an idle keep-alive connection; when none is idle it
// waits in a queue on the client. Its latency is measured from the scheduled time, not from the
// moment it was actually written, so a server stall shows up in full in every request it delayed
// (no coordinated omission: a closed-loop client would simply stop asking during the stall).
//
//   rate-client -p PORT [-r RATE] [-c CONNS] [-d SECONDS] [-w WARMUP] [-u PATH] [-a 127.0.0.1]
//   rate-client --spin SECONDS       a SCHED_OTHER busy loop that ends by itself (the CPU hog)
//
// Only loopback addresses (127.0.0.0/8) are accepted. The run is bounded: the schedule ends after
// WARMUP + SECONDS, in-flight requests get at most 1 s more, then one JSON line goes to stdout:
//   {"scheduled":…,"completed":…,"errors":…,"incomplete":…,"achieved_rps":…,
//    "p50_us":…,"p90_us":…,"p99_us":…,"p999_us":…,"max_us":…,"mean_us":…}
// Figures cover the requests scheduled after the warm-up. A request still unanswered at the end
// enters the percentiles with its age at that moment (a lower bound) and is counted in
// "incomplete". Build: cc -O2 -o rate-client rate-client.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUF 8192
#define DRAIN_NS 1000000000LL

typedef struct {
  int fd;
  int busy;            // a request is in flight
  int64_t sched;       // its scheduled time (ns)
  int64_t k;           // its index
  char buf[BUF];
  size_t len;          // bytes held in buf
  int64_t total;       // length of the response being read, -1 while its header is incomplete
  int64_t discard;     // bytes of a large body still to skip (beyond buf)
  int status;
} conn_t;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "rate-client: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int spin(double seconds) {
  struct sched_param sp = {0};
  sched_setscheduler(0, SCHED_OTHER, &sp); // a normal task, whatever the parent was
  int64_t end = now_ns() + (int64_t)(seconds * 1e9);
  volatile uint64_t x = 0;
  for (;;) {
    for (int i = 0; i < 1000000; i++) x++;
    if (now_ns() >= end) return 0;
  }
}

static struct sockaddr_in addr;
static char request[512];
static size_t request_len;

static int open_conn(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
  return fd;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(const int64_t *v, int64_t n, double p) {
  if (n == 0) return -1;
  int64_t idx = (int64_t)((p / 100.0) * (double)n + 0.999999999) - 1; // nearest rank
  if (idx < 0) idx = 0;
  if (idx >= n) idx = n - 1;
  return (double)v[idx] / 1000.0;
}

static void usage(void) {
  fprintf(stderr, "usage: rate-client -p PORT [-r RATE] [-c CONNS] [-d SECONDS] [-w WARMUP] [-u PATH] [-a 127.0.0.1]\n"
                  "       rate-client --spin SECONDS\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--spin") == 0) {
    double s = atof(argv[2]);
    if (!(s > 0 && s <= 3600)) usage();
    return spin(s);
  }
  int port = 0, nconns = 16;
  double rate = 20000, dur = 10, warm = 1;
  const char *path = "/1b", *host = "127.0.0.1";
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i];
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(f, "-p")) port = atoi(v);
    else if (!strcmp(f, "-r")) rate = atof(v);
    else if (!strcmp(f, "-c")) nconns = atoi(v);
    else if (!strcmp(f, "-d")) dur = atof(v);
    else if (!strcmp(f, "-w")) warm = atof(v);
    else if (!strcmp(f, "-u")) path = v;
    else if (!strcmp(f, "-a")) host = v;
    else usage();
  }
  if (port <= 0 || port > 65535 || nconns < 1 || nconns > 10000 || !(rate > 0) || !(dur > 0) || dur > 3600 ||
      warm < 0 || warm > 600 || rate * (dur + warm) > 5e7 || strlen(path) > 200 || path[0] != '/')
    usage();
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 || (ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "rate-client: %s: only numeric loopback addresses (127.0.0.0/8)\n", host);
    return 2;
  }
  request_len = (size_t)snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path, host, port);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); // wake on schedule, not up to 50 µs late

  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  conn_t *conns = calloc((size_t)nconns, sizeof(conn_t));
  int *idle = malloc(sizeof(int) * (size_t)nconns); // stack of idle connection indexes
  if (!conns || !idle) die("calloc");
  int nidle = 0;
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = open_conn();
    conns[i].total = -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) die("epoll_ctl");
    idle[nidle++] = i;
  }
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  if (tfd < 0) die("timerfd_create");
  struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) < 0) die("epoll_ctl timerfd");

  const double period = 1e9 / rate; // ns between scheduled sends
  const int64_t total = (int64_t)((warm + dur) * rate);
  const int64_t warm_k = (int64_t)(warm * rate); // requests before this index are warm-up
  const int64_t measured = total - warm_k;
  int64_t *lat = malloc(sizeof(int64_t) * (size_t)(measured > 0 ? measured : 1));
  if (!lat) die("malloc");
  int64_t nlat = 0, completed = 0, errors = 0, sent = 0, reconnects = 0;
  const int64_t t0 = now_ns() + 1000000; // 1 ms head start
  const int64_t sched_end = t0 + (int64_t)((warm + dur) * 1e9);
  const int64_t deadline = sched_end + DRAIN_NS;
  int64_t armed = -1;
  struct epoll_event evs[256];

  for (;;) {
    int64_t now = now_ns();
    // Everything due is sent on idle connections; the rest waits in the (implicit) queue.
    int64_t due = now < t0 ? 0 : (int64_t)((double)(now - t0) / period) + 1;
    if (due > total) due = total;
    while (sent < due && nidle > 0) {
      conn_t *c = &conns[idle[--nidle]];
      c->busy = 1;
      c->k = sent;
      c->sched = t0 + (int64_t)((double)sent * period);
      c->len = 0;
      c->total = -1;
      c->discard = 0;
      sent++;
      ssize_t w = write(c->fd, request, request_len);
      if (w != (ssize_t)request_len) { // a fresh keep-alive socket always takes 60 bytes
        errors += c->k >= warm_k;
        c->busy = 0;
        idle[nidle++] = (int)(c - conns);
      }
    }
    if (now >= deadline || (sent == total && nidle == nconns)) break;
    // Wake at the next scheduled send (or the drain deadline); responses wake us anyway.
    int64_t wake = sent < total ? t0 + (int64_t)((double)sent * period) : deadline;
    if (sent < due) wake = deadline; // backlog: only a response can free a connection
    if (wake != armed) {
      struct itimerspec its = {{0, 0}, {wake / 1000000000LL, wake % 1000000000LL}};
      if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
      armed = wake;
    }
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < n; e++) {
      uint32_t id = evs[e].data.u32;
      if (id == UINT32_MAX) {
        uint64_t x;
        if (read(tfd, &x, sizeof x) < 0) { /* EAGAIN: already consumed */ }
        armed = -1;
        continue;
      }
      conn_t *c = &conns[id];
      for (;;) {
        char *dst = c->discard > 0 ? c->buf : c->buf + c->len;
        size_t room = c->discard > 0 ? BUF : BUF - c->len;
        ssize_t r = read(c->fd, dst, room);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { // the server closed or reset: count the request lost, reconnect
          if (c->busy) errors += c->k >= warm_k;
          epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
          close(c->fd);
          c->fd = open_conn();
          struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
          reconnects++;
          if (c->busy) {
            c->busy = 0;
            idle[nidle++] = (int)id;
          }
          break;
        }
        if (c->discard > 0) {
          c->discard -= r;
          if (c->discard > 0) continue;
          c->len = 0; // body skipped (a body never ends mid-read with pipelining off)
        } else {
          c->len += (size_t)r;
          if (c->total < 0) {
            char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (end == NULL) {
              if (c->len == BUF) { errno = EMSGSIZE; die("response header larger than 8 KiB"); }
              continue;
            }
            int64_t hl = end + 4 - c->buf, cl = 0;
            c->status = c->len > 12 ? atoi(c->buf + 9) : 0;
            for (char *p = c->buf; p < end; p++) {
              if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
                cl = atoll(p + 15);
                break;
              }
            }
            c->total = hl + cl;
            if (c->total > BUF) {
              c->discard = c->total - (int64_t)c->len;
              c->len = 0;
              continue;
            }
          }
          if ((int64_t)c->len < c->total) continue;
        }
        // One whole response: its latency runs from when the request was due.
        int64_t t = now_ns();
        if (c->busy) {
          if (c->k >= warm_k) {
            if (c->status >= 200 && c->status < 300) {
              lat[nlat++] = t - c->sched;
              completed++;
            } else {
              errors++;
            }
          }
          c->busy = 0;
          idle[nidle++] = (int)id;
        }
        c->len = 0;
        c->total = -1;
        c->discard = 0;
      }
    }
  }
  // Unanswered and never-sent measured requests enter with their age now (a lower bound).
  int64_t end = now_ns(), incomplete = 0;
  for (int i = 0; i < nconns; i++) {
    if (conns[i].busy && conns[i].k >= warm_k) {
      lat[nlat++] = end - conns[i].sched;
      incomplete++;
    }
  }
  for (int64_t k = sent > warm_k ? sent : warm_k; k < total; k++) {
    lat[nlat++] = end - (t0 + (int64_t)((double)k * period));
    incomplete++;
  }
  qsort(lat, (size_t)nlat, sizeof(int64_t), cmp_i64);
  double sum = 0;
  for (int64_t i = 0; i < nlat; i++) sum += (double)lat[i];
  printf("{\"target_rps\":%.0f,\"connections\":%d,\"warmup_s\":%g,\"duration_s\":%g,\"scheduled\":%lld,"
         "\"completed\":%lld,\"errors\":%lld,\"incomplete\":%lld,\"reconnects\":%lld,\"achieved_rps\":%.1f,"
         "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f}\n",
         rate, nconns, warm, dur, (long long)measured, (long long)completed, (long long)errors, (long long)incomplete,
         (long long)reconnects, (double)completed / dur, pct_us(lat, nlat, 50), pct_us(lat, nlat, 90),
         pct_us(lat, nlat, 99), pct_us(lat, nlat, 99.9), nlat ? (double)lat[nlat - 1] / 1000.0 : -1,
         nlat ? sum / (double)nlat / 1000.0 : -1);
  return 0;
}
