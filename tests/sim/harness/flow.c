/*
 * Bulk flows (see flow.h).
 */
#include "flow.h"

#include "inet/inet_int.h"

void flow_init(struct flow *f, struct simnode *tx, void *txq, struct simnode *rx, void *rxq, size_t size, uint64_t seed)
{
    memset(f, 0, sizeof(*f));
    f->tx = tx;
    f->rx = rx;
    f->txq = txq;
    f->rxq = rxq;
    f->size = size;
    f->seed = seed;
    f->chunk = 256 * 1024;
    f->verify = true;
}

bool flow_step(struct flow *f)
{
    if (f->done || f->failed)
        return f->done;
    for (int i = 0; i < FLOW_PUSHES; i++) {
        if (f->push[i] && sw_done(f->push[i])) {
            demi_qresult_t qr = sw_result(f->tx, f->push[i]);
            f->push[i] = NULL;
            if (qr.qr_opcode != DEMI_OPC_PUSH) {
                fprintf(stderr, "flow: push failed: %s\n", strerror((int)qr.qr_ret));
                f->failed = true;
                exit(1);
            }
        }
        if (!f->push[i] && f->queued < f->size) {
            size_t n = f->size - f->queued;
            if (n > f->chunk)
                n = f->chunk;
            /* Vary the chunking so segments straddle buffers. */
            if (n > 1000 && (f->queued / f->chunk) % 3 == 1)
                n -= 777;
            demi_sgarray_t s = sw_sga(f->tx, n, f->seed, f->queued);
            f->push[i] = sw_push(f->tx, f->txq, &s);
            sw_free(f->tx, &s);
            f->queued += n;
        }
    }
    while (f->received < f->size) {
        if (!f->pop)
            f->pop = sw_pop(f->rx, f->rxq);
        if (!sw_done(f->pop))
            break;
        demi_qresult_t qr = sw_result(f->rx, f->pop);
        f->pop = NULL;
        if (qr.qr_opcode != DEMI_OPC_POP || qr.qr_value.sga.sga_numsegs == 0) {
            fprintf(stderr, "flow: pop %s at byte %zu of %zu\n",
                    qr.qr_opcode == DEMI_OPC_POP ? "hit EOF" : strerror((int)qr.qr_ret), f->received, f->size);
            exit(1);
        }
        if (f->verify && !sw_check(&qr.qr_value.sga, f->seed, f->received)) {
            fprintf(stderr, "flow: wrong bytes near offset %zu\n", f->received);
            exit(1);
        }
        for (uint32_t s = 0; s < qr.qr_value.sga.sga_numsegs; s++)
            f->received += qr.qr_value.sga.sga_segs[s].sgaseg_len;
        sw_free(f->rx, &qr.qr_value.sga);
        if (f->received > f->size) {
            fprintf(stderr, "flow: %zu bytes received, more than the %zu sent\n", f->received, f->size);
            exit(1);
        }
    }
    bool pushes_done = true;
    for (int i = 0; i < FLOW_PUSHES; i++)
        pushes_done &= f->push[i] == NULL;
    f->done = f->received == f->size && f->queued == f->size && pushes_done;
    return f->done;
}

void sw_pair(struct simworld *w, struct simnode *a, struct simnode *b, uint16_t port, void **aq, void **bq)
{
    void *ls = sw_socket(b, SOCK_STREAM);
    sw_bind(b, ls, port);
    sw_listen(b, ls, 16);
    struct sched_task *acc = sw_accept(b, ls);
    *aq = sw_socket(a, SOCK_STREAM);
    struct sched_task *con = sw_connect(a, *aq, b, port);
    demi_qresult_t qr = sw_wait(w, a, con, 60 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    qr = sw_wait(w, b, acc, 60 * SEC);
    CHECK_EQ(qr.qr_opcode, DEMI_OPC_ACCEPT);
    *bq = sw_accepted(b, &qr);
    sw_close(b, ls);
}
