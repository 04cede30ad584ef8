/*
 * Named test cases, each run in its own child process so that a failed
 * check (which exits) ends that case alone, and any one of them can run by
 * itself:
 *   PROGRAM            every case
 *   PROGRAM CASE...    those cases (DEMI_TEST_CASE=CASE does the same)
 *   PROGRAM --list     the names
 * A test defines its cases and calls tcase_main() from main(). @wrap, when
 * not NULL, runs a case in the child in place of tc->run() (to set up and
 * tear down around it; tc->flags says what the case needs).
 */
#ifndef DEMI_TEST_TCASES_H
#define DEMI_TEST_TCASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct tcase {
    const char *name;
    void (*run)(void);
    unsigned flags; /* the test's own meaning, for its wrapper */
};

/* Runs @tc in a child process; returns the child's exit status. */
static inline int tcase_run(const struct tcase *tc, void (*wrap)(const struct tcase *))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        if (wrap)
            wrap(tc);
        else
            tc->run();
        fflush(stdout);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return 1;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    fprintf(stderr, "%s: killed by signal %d\n", tc->name, WTERMSIG(status));
    return 1;
}

static inline bool tcase_named(const struct tcase *tc, char **want, int nwant)
{
    for (int k = 0; k < nwant; k++)
        if (strcmp(tc->name, want[k]) == 0)
            return true;
    return false;
}

/* The whole program's main: returns its exit status (0 every chosen case
 * passed, 1 one failed, 2 an unknown case name). @title starts the
 * summary line. */
static inline int tcase_main(int argc, char **argv, const struct tcase *cases, size_t n, const char *title,
                             void (*wrap)(const struct tcase *))
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    const char *env = getenv("DEMI_TEST_CASE");
    char **want = argc > 1 ? argv + 1 : NULL;
    int nwant = argc > 1 ? argc - 1 : 0;
    if (!want && env && *env) {
        want = (char **)&env;
        nwant = 1;
    }
    for (int k = 0; k < nwant; k++) {
        size_t i = 0;
        while (i < n && strcmp(cases[i].name, want[k]) != 0)
            i++;
        if (i == n) {
            fprintf(stderr, "no case named '%s' (--list prints the names)\n", want[k]);
            return 2;
        }
    }
    int failed = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (nwant && !tcase_named(&cases[i], want, nwant))
            continue;
        ran++;
        int rc = tcase_run(&cases[i], wrap);
        if (rc != 0) {
            fprintf(stderr, "FAIL: case %s (exit %d)\n", cases[i].name, rc);
            failed++;
        }
    }
    if (failed) {
        fprintf(stderr, "%s: %d of %d case(s) failed\n", title, failed, ran);
        return 1;
    }
    printf("%s: ok (%d case%s)\n", title, ran, ran == 1 ? "" : "s");
    return 0;
}

#endif
