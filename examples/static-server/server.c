/* static-server: a tiny HTTP/1.0 server for `slimage minify`'s tests, built static with
 * musl-gcc so that its image needs nothing but the binary (and /etc/passwd for USER).
 * Routes: / -> greeting, /health -> ok, anything else -> 404. PORT sets the port (8081). */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void reply(int fd, const char *status, const char *body) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, strlen(body));
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0) perror("write");
}

static void on_term(int sig) { (void)sig; _exit(0); }

int main(void) {
    const char *p = getenv("PORT");
    int port = p ? atoi(p) : 8081, one = 1;
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 16) < 0) {
        perror("static-server: listen");
        return 1;
    }
    printf("static-server listening on :%d\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        char req[2048] = {0}, method[16] = {0}, path[1024] = {0};
        ssize_t n = read(c, req, sizeof req - 1);
        if (n > 0 && sscanf(req, "%15s %1023s", method, path) == 2) {
            if (strcmp(path, "/") == 0)
                reply(c, "200 OK", "Hello from static-server!\n");
            else if (strcmp(path, "/health") == 0)
                reply(c, "200 OK", "ok\n");
            else
                reply(c, "404 Not Found", "not found\n");
        }
        close(c);
    }
}
