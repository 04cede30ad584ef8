/*
 * Scheduler (see sched.h). Pages of tasks never move once allocated, so
 * task pointers stay valid for the scheduler's lifetime; only the array of
 * page pointers and the summary mask grow.
 */
#include "core/sched.h"

#include "mem/sga.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sched_init(struct sched *s)
{
    memset(s, 0, sizeof(*s));
    return 0;
}

void sched_fini(struct sched *s)
{
    for (uint32_t i = 0; i < s->npages; i++)
        free(s->pages[i]);
    free(s->pages);
    free(s->summary);
    memset(s, 0, sizeof(*s));
}

static int add_page(struct sched *s)
{
    if ((uint64_t)(s->npages + 1) * SCHED_PAGE > SCHED_MAX_TASKS)
        return ENOMEM;
    if (s->npages == s->cap_pages) {
        uint32_t cap = s->cap_pages ? s->cap_pages * 2 : 64;
        struct sched_page **pages = realloc(s->pages, cap * sizeof(*pages));
        if (!pages)
            return ENOMEM;
        s->pages = pages;
        uint32_t nsum = (cap + 63) / 64;
        if (nsum > s->nsummary) {
            uint64_t *sum = realloc(s->summary, nsum * sizeof(*sum));
            if (!sum)
                return ENOMEM;
            memset(sum + s->nsummary, 0, (nsum - s->nsummary) * sizeof(*sum));
            s->summary = sum;
            s->nsummary = nsum;
        }
        s->cap_pages = cap;
    }
    struct sched_page *pg = aligned_alloc(64, (sizeof(*pg) + 63) & ~(size_t)63);
    if (!pg)
        return ENOMEM;
    memset(pg, 0, sizeof(*pg));
    uint32_t base = s->npages * SCHED_PAGE;
    /* Push in reverse so the lowest index is handed out first. */
    for (int i = SCHED_PAGE - 1; i >= 0; i--) {
        struct sched_task *t = &pg->task[i];
        t->idx = base + (uint32_t)i;
        t->gen = 1;
        t->next = s->free;
        s->free = t;
    }
    s->pages[s->npages++] = pg;
    return 0;
}

struct sched_task *sched_alloc(struct sched *s, sched_fn poll, void *owner)
{
    if (!s->free) {
        int err = add_page(s);
        if (err) {
            errno = err;
            return 0;
        }
    }
    struct sched_task *t = s->free;
    s->free = t->next;
    t->next = t->prev = 0;
    t->list = 0;
    t->poll = poll;
    t->owner = owner;
    t->state = TASK_ACTIVE;
    t->background = 0;
    t->kind = 0;
    t->qd = -1;
    memset(t->arg, 0, sizeof(t->arg));
    t->qr.qr_opcode = DEMI_OPC_INVALID;
    t->qr.qr_ret = 0;
    s->live++;
    return t;
}

void sched_free(struct sched *s, struct sched_task *t)
{
    t->state = TASK_FREE;
    t->poll = 0;
    t->owner = 0;
    if (++t->gen == 0)
        t->gen = 1;
    t->next = s->free;
    s->free = t;
    s->live--;
}

unsigned sched_run(struct sched *s)
{
    unsigned polled = 0;
    for (uint32_t w = 0; w < s->nsummary; w++) {
        uint64_t sm = s->summary[w];
        if (!sm)
            continue;
        s->summary[w] = 0;
        while (sm) {
            uint32_t p = w * 64 + (uint32_t)__builtin_ctzll(sm);
            sm &= sm - 1;
            struct sched_page *pg = s->pages[p];
            uint64_t m = pg->ready;
            pg->ready = 0;
            while (m) {
                unsigned i = (unsigned)__builtin_ctzll(m);
                m &= m - 1;
                struct sched_task *t = &pg->task[i];
                /* Completed or freed after it was woken, or its slot
                 * since given to a task that is not polled. */
                if (t->state != TASK_ACTIVE || !t->poll)
                    continue;
                polled++;
                int r = t->poll(s, t);
                if (r == SCHED_YIELD) {
                    pg->ready |= 1ull << i;
                    s->summary[w] |= 1ull << (p % 64);
                } else if (r == SCHED_DONE && t->state == TASK_ACTIVE) {
                    sched_complete(s, t);
                }
            }
        }
    }
    s->polls += polled;
    return polled;
}

void sched_complete(struct sched *s, struct sched_task *t)
{
    tlist_remove(t);
    s->completions++;
    if (t->background) {
        sched_free(s, t);
        return;
    }
    t->state = TASK_DONE;
    t->qr.qr_qd = t->qd;
    t->qr.qr_qt = sched_qtoken(t);
    tlist_push(&s->done, t);
}

void sched_fail(struct sched *s, struct sched_task *t, int err)
{
    t->qr.qr_opcode = DEMI_OPC_FAILED;
    t->qr.qr_ret = err;
    memset(&t->qr.qr_value, 0, sizeof(t->qr.qr_value));
    sched_complete(s, t);
}

struct sched_task *sched_lookup(struct sched *s, demi_qtoken_t qt)
{
    uint32_t idx = (uint32_t)qt;
    uint32_t gen = (uint32_t)(qt >> 32);
    if (idx >= s->npages * SCHED_PAGE)
        return 0;
    struct sched_task *t = &s->pages[idx / SCHED_PAGE]->task[idx % SCHED_PAGE];
    if (t->gen != gen || t->state == TASK_FREE || t->background)
        return 0;
    return t;
}

void sched_copy_sga(demi_sgarray_t *dst, const demi_sgarray_t *src)
{
    uint32_t n = src->sga_numsegs <= DEMI_SGARRAY_MAXSIZE ? src->sga_numsegs : DEMI_SGARRAY_MAXSIZE;
    dst->sga_buf = src->sga_buf;
    dst->sga_numsegs = src->sga_numsegs;
    for (uint32_t i = 0; i < n; i++)
        dst->sga_segs[i] = src->sga_segs[i];
    if (n == 0)
        dst->sga_segs[0] = src->sga_segs[0]; /* an empty array still reads as segs[0].len == 0 */
    dst->sga_addr = src->sga_addr;
}

void sched_harvest(struct sched *s, struct sched_task *t, demi_qresult_t *out)
{
    /* Copy what the result uses, not the whole 300-byte struct: this is
     * on every operation's path. */
    out->qr_opcode = t->qr.qr_opcode;
    out->qr_qd = t->qr.qr_qd;
    out->qr_qt = t->qr.qr_qt;
    out->qr_ret = t->qr.qr_ret;
    switch (t->qr.qr_opcode) {
    case DEMI_OPC_POP:
        sched_copy_sga(&out->qr_value.sga, &t->qr.qr_value.sga);
        break;
    case DEMI_OPC_PUSH:
        /* The pushed array, for the application's bookkeeping only: it
         * owns nothing, and freeing it must not free the array pushed. */
        sched_copy_sga(&out->qr_value.sga, &t->qr.qr_value.sga);
        mem_sga_mark_result(&out->qr_value.sga);
        break;
    case DEMI_OPC_ACCEPT:
        out->qr_value.ares = t->qr.qr_value.ares;
        break;
    default:
        memset(&out->qr_value, 0, sizeof(out->qr_value));
        break;
    }
    tlist_remove(t);
    sched_free(s, t);
}
