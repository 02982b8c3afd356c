/* floor.c: the cheapest HTTP/1.1 responder we can write, so the bench can show
 * what the kernel's own socket work costs per request. Anything vw spends above
 * this floor is vw's; nothing here parses HTTP.
 *
 *   cc -O2 -o floor bench/floor.c && ./floor PORT [THREADS]
 *
 * Each thread owns a SO_REUSEPORT listener on 127.0.0.1:PORT and a
 * level-triggered epoll set (the kernel spreads connections over the threads).
 * Per readable connection: exactly one read(); for each "\r\n\r\n" in it, one
 * canned response, all of them in ONE write() so pipelined requests cost one
 * syscall each way. A request split across two reads is not counted: fine for
 * wrk, which writes whole requests. A short write is ignored: the socket buffer
 * holds far more than one read's worth of replies. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RESP "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Length: 1\r\nContent-Type: text/plain\r\n\r\nx"
/* wrk's no-keep-alive scenario sends "Connection: close"; wrk only reconnects
 * when the response says so, so the floor answers that case in kind and closes
 * (one memmem, still no parsing). */
#define RESP_CLOSE "HTTP/1.1 200 OK\r\nServer: floor\r\nConnection: close\r\nContent-Length: 1\r\nContent-Type: text/plain\r\n\r\nx"
#define BUF 65536
#define MAXREQ (BUF / 4) /* at most one "\r\n\r\n" per 4 bytes read */

static char *canned; /* MAXREQ copies of RESP back to back, built once */
static int port;

static void die(const char *what) { perror(what); exit(1); }

static void *serve(void *arg) {
  (void)arg;
  static __thread char in[BUF];
  int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (lfd < 0) die("socket");
  /* REUSEPORT: one listener per thread, no shared accept queue to fight over. */
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[256];
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll");
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1); /* -1: sleep when idle, never spin */
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) { /* level-triggered: drain the accept queue now anyway */
        int c;
        while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          ev.events = EPOLLIN, ev.data.fd = c;
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0) close(c);
        }
        continue;
      }
      ssize_t r = read(fd, in, BUF);
      if (r <= 0) { /* EOF or error (EAGAIN cannot happen: LT said readable) */
        close(fd); /* close() also drops fd from the epoll set */
        continue;
      }
      size_t reqs = 0;
      for (char *p = in, *end = in + r; (p = memmem(p, end - p, "\r\n\r\n", 4)); p += 4) reqs++;
      if (memmem(in, r, "Connection: close", 17)) {
        if (write(fd, RESP_CLOSE, sizeof RESP_CLOSE - 1) < 0) { /* closing anyway */ }
        close(fd);
      } else if (reqs && write(fd, canned, reqs * (sizeof RESP - 1)) < 0) {
        close(fd);
      }
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]); return 2; }
  port = atoi(argv[1]);
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (port <= 0 || port > 65535 || threads < 1) { fprintf(stderr, "bad args\n"); return 2; }
  canned = malloc(MAXREQ * (sizeof RESP - 1));
  if (!canned) die("malloc");
  for (size_t i = 0; i < MAXREQ; i++) memcpy(canned + i * (sizeof RESP - 1), RESP, sizeof RESP - 1);
  pthread_t t;
  for (int i = 1; i < threads; i++)
    if (pthread_create(&t, NULL, serve, NULL)) die("pthread_create");
  serve(NULL); /* the main thread is worker 0 */
  return 0;
}
