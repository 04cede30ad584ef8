/*
 * Configuration loading: defaults, then a YAML file in Demikernel's layout,
 * then environment variables, then cross-field checks (see config.h for the
 * layout). Every key is one row of keys[] below, so a new key is one line
 * there plus its field in struct config. Nothing here may abort, exit or
 * crash on any input: every problem becomes a positive errno and one line
 * of text naming the key, the problem and where the value came from.
 */
#include "core/config.h"

#include "core/common.h"
#include "core/log.h"
#include "core/libos_names.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* A config file larger than this is a mistake (or /dev/zero). */
#define CONFIG_FILE_MAX (1u << 20)

/* libyaml slows down with the square of the nesting depth and of the number
 * of anchors (a megabyte of either takes seconds to minutes). Our sections
 * nest three levels deep and need no anchors, so these limits are generous. */
#define YAML_DEPTH_MAX   64
#define YAML_ANCHORS_MAX 256
/* Aliases can make a few bytes stand for a large mapping again and again;
 * this bounds the keys visited in our sections (a real file has dozens). */
#define YAML_KEYS_MAX 4096

/* Unknown keys past this many are counted, not each logged. */
#define UNKNOWN_LOG_MAX 16

/* Values quoted in error messages are cut to this many bytes. */
#define QUOTE_MAX 64

/* The network libOSes (core/libos_names.h); KNOWN_LIBOSES lists them for messages. */
#define LIBOS_NAME_(name, create, why_not) #name,
static const char *const libos_names[] = {LIBOS_NETWORK_LIST(LIBOS_NAME_)};
#define KNOWN_LIBOSES LIBOS_KNOWN_NAMES
/* In enum config_huge order. */
static const char *const huge_names[] = {"auto", "on", "off"};
static const char *const cc_names[] = {"cubic", "newreno"};

enum key_type {
    T_STR,      /* bounded string: the field is a char array */
    T_IPV4,     /* struct in_addr */
    T_MAC,      /* uint8_t[6] */
    T_BOOL,     /* bool */
    T_U32,      /* uint32_t, decimal */
    T_U64,      /* uint64_t, decimal */
    T_SIZE,     /* uint64_t bytes, with optional K/M/G suffix */
    T_DURATION, /* uint64_t nanoseconds */
    T_STRLIST,  /* the EAL argument list: eal_argc and eal_argv */
    T_ARPMAP,   /* the static ARP table: n_arp and arp_table */
    T_HUGE,     /* int holding an enum config_huge */
    T_CC,       /* int holding an enum config_cc */
    T_LIBOS,    /* char array holding one of libos_names */
};

struct key {
    const char *section; /* top-level YAML section */
    const char *name;    /* path inside the section, levels joined by '.'; NULL: environment only */
    const char *env;     /* environment variable; NULL: file only */
    enum key_type type;
    size_t off;     /* where the value lives in struct config */
    size_t size;    /* its size (the bound of a T_STR) */
    ptrdiff_t flag; /* offset of a bool set true whenever the key is set, or -1 (not for lists) */
};

#define OFF(f)  offsetof(struct config, f)
#define SIZE(f) sizeof(((struct config *)0)->f)
/* clang-format off */
#define KEY(sec, name, env, type, f) {sec, name, env, type, OFF(f), SIZE(f), -1}
#define KEYF(sec, name, env, type, f, flag) {sec, name, env, type, OFF(f), SIZE(f), (ptrdiff_t)OFF(flag)}
/* clang-format on */

/*
 * Every key, in the order the environment is applied. To add one: a field
 * in struct config, a default in config_defaults(), and one row here.
 */
static const struct key keys[] = {
    KEYF("demikernel", "local_ipv4_addr", "LOCAL_IPV4_ADDR", T_IPV4, local_ipv4_addr, has_local_ipv4_addr),
    KEYF("demikernel", "local_link_addr", "LOCAL_LINK_ADDR", T_MAC, local_link_addr, has_local_link_addr),
    KEY("raw_socket", "linux_interface_name", "LINUX_INTERFACE_NAME", T_STR, linux_interface_name),
    KEY("raw_socket", "backend", "RAW_SOCKET_BACKEND", T_STR, raw_backend),
    KEY("raw_socket", "xdp_native", "XDP_NATIVE", T_BOOL, xdp_native),
    KEY("dpdk", "eal_init", "EAL_INIT", T_STRLIST, eal_argv),
    KEY("dpdk", "mbufs", "DPDK_MBUFS", T_U32, dpdk_mbufs),
    KEY("dpdk", "rx_ring", "DPDK_RX_RING", T_U32, dpdk_rx_ring),
    KEY("dpdk", "tx_ring", "DPDK_TX_RING", T_U32, dpdk_tx_ring),
    KEY("tcp_socket_options", "keepalive.enabled", "KEEPALIVE", T_BOOL, keepalive),
    KEY("tcp_socket_options", "keepalive.time_millis", "KEEPALIVE_TIME_MILLIS", T_U32, keepalive_time_ms),
    KEY("tcp_socket_options", "keepalive.interval", "KEEPALIVE_INTERVAL", T_U32, keepalive_interval_ms),
    KEY("tcp_socket_options", "linger.enabled", NULL, T_BOOL, linger),
    KEY("tcp_socket_options", "linger.time_seconds", NULL, T_U32, linger_secs),
    KEYF("tcp_socket_options", NULL, "LINGER", T_U32, linger_secs, linger),
    KEY("tcp_socket_options", "nodelay", "NODELAY", T_BOOL, nodelay),
    KEY("inetstack_config", "mtu", "MTU", T_U32, mtu),
    KEYF("inetstack_config", "mss", "MSS", T_U32, mss, mss_set),
    KEY("inetstack_config", "enable_jumbo_frames", "ENABLE_JUMBO_FRAMES", T_BOOL, enable_jumbo_frames),
    KEY("inetstack_config", "tcp_checksum_offload", "TCP_CHECKSUM_OFFLOAD", T_BOOL, tcp_checksum_offload),
    KEY("inetstack_config", "udp_checksum_offload", "UDP_CHECKSUM_OFFLOAD", T_BOOL, udp_checksum_offload),
    KEY("inetstack_config", "arp_cache_ttl", "ARP_CACHE_TTL", T_DURATION, arp_cache_ttl_ns),
    KEY("inetstack_config", "arp_request_timeout", "ARP_REQUEST_TIMEOUT", T_DURATION, arp_request_timeout_ns),
    KEY("inetstack_config", "arp_request_retries", "ARP_REQUEST_RETRIES", T_U32, arp_request_retries),
    KEY("inetstack_config", "arp_table", "ARP_TABLE", T_ARPMAP, arp_table),
    KEY("inetstack_config", "tcp_congestion_control", "TCP_CONGESTION_CONTROL", T_CC, tcp_cc),
    KEY("inetstack_config", "tcp_delayed_ack", "TCP_DELAYED_ACK", T_DURATION, tcp_delack_ns),
    KEY("inetstack_config", "tcp_msl", "TCP_MSL", T_DURATION, tcp_msl_ns),
    KEY("inetstack_config", "tcp_rcvbuf", "TCP_RCVBUF", T_SIZE, tcp_rcvbuf),
    KEY("inetstack_config", "tcp_sndbuf", "TCP_SNDBUF", T_SIZE, tcp_sndbuf),
    KEY("inetstack_config", "tcp_sack", "TCP_SACK", T_BOOL, tcp_sack),
    KEY("inetstack_config", "tcp_tail_loss_probe", "TCP_TAIL_LOSS_PROBE", T_BOOL, tcp_tlp),
    KEY("inetstack_config", "tcp_timestamps", "TCP_TIMESTAMPS", T_BOOL, tcp_timestamps),
    KEY("inetstack_config", "tcp_window_scale", "TCP_WINDOW_SCALE", T_BOOL, tcp_wscale),
    KEY("inetstack_config", "tcp_rto_min", "TCP_RTO_MIN", T_DURATION, tcp_rto_min_ns),
    KEY("inetstack_config", "tcp_syn_retries", "TCP_SYN_RETRIES", T_U32, tcp_syn_retries),
    KEY("inetstack_config", "tcp_syncookies", "TCP_SYNCOOKIES", T_U32, tcp_syncookies),
    KEY("inetstack_config", "tcp_retries2", "TCP_RETRIES2", T_U32, tcp_retries2),
    KEY("inetstack_config", "tcp_orphan_retries", "TCP_ORPHAN_RETRIES", T_U32, tcp_orphan_retries),
    KEY("inetstack_config", "tcp_max_orphans", "TCP_MAX_ORPHANS", T_U32, tcp_max_orphans),
    KEY("inetstack_config", "tcp_fin_timeout", "TCP_FIN_TIMEOUT", T_DURATION, tcp_fin_timeout_ns),
    KEY("libdemi", "libos", "LIBOS", T_LIBOS, libos),
    KEY("libdemi", "heap_size", "HEAP_SIZE", T_SIZE, heap_size),
    KEYF("libdemi", "heap_reserve", "HEAP_RESERVE", T_SIZE, heap_reserve, heap_reserve_set),
    KEY("libdemi", "hugepages", "HUGEPAGES", T_HUGE, hugepages),
    KEY("libdemi", "spin_us", "SPIN_US", T_U32, spin_us),
    KEY("libdemi", "queues", "QUEUES", T_U32, queues),
    KEY("libdemi", "queue", "QUEUE", T_U32, queue),
};

/* Where values are coming from, and where errors go. */
struct ctx {
    struct config *c;
    char *err;
    size_t errlen;
    const char *origin; /* "file <path>" or "YAML text"; NULL while applying the environment */
    const char *envval; /* the environment value being applied */
    int keys_left;      /* YAML keys we may still visit */
    int unknown;        /* unknown keys met so far */
};

/* ---- Error messages ---- */

/* Writes one line into @err, if there is room at all, and returns EINVAL.
 * Control characters (a quoted "\n" in a YAML value, say) become '?' to keep
 * it one line. */
static int __attribute__((format(printf, 3, 4))) put_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return EINVAL;
}

/* Clears @err and checks @c: the start of every public entry point. */
static int begin(const void *c, const char *fn, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    return c ? 0 : put_err(err, errlen, "%s: no config given", fn);
}

/* Writes "<where>: <message> (<origin>)" and returns EINVAL. <where> is
 * section.name for YAML and VAR=value for the environment. */
static int __attribute__((format(printf, 3, 4))) key_err(struct ctx *x, const struct key *k, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (x->origin)
        put_err(x->err, x->errlen, "%s.%s: %s (%s)", k->section, k->name, msg, x->origin);
    else
        put_err(x->err, x->errlen, "%s=%.*s: %s (environment)", k->env, QUOTE_MAX, x->envval, msg);
    return EINVAL;
}

/* A value that does not parse: the environment form already shows it. */
static int bad_value(struct ctx *x, const struct key *k, const char *val, const char *problem)
{
    if (!x->origin)
        return key_err(x, k, "%s", problem);
    return key_err(x, k, "\"%.*s\" is %s", QUOTE_MAX, val, problem);
}

/* ---- Value parsers ---- */

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int hex_value(char ch)
{
    return !isxdigit((unsigned char)ch) ? -1 : is_digit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10;
}

/* The index of @s in @names (case-insensitive), or -1. */
static int name_index(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

/* Reads decimal digits at *sp and advances past them. Returns EINVAL when
 * there are none and ERANGE when they do not fit in 64 bits. */
static int scan_u64(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    uint64_t v = 0;
    bool overflow = false;
    if (!is_digit(*s))
        return EINVAL;
    for (; is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        overflow |= v > (UINT64_MAX - d) / 10;
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return overflow ? ERANGE : 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    int rc = scan_u64(&s, out);
    return rc == EINVAL || *s ? EINVAL : rc;
}

static int parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    unsigned shift = 0;
    int rc = scan_u64(&s, &v);
    if (rc == EINVAL)
        return EINVAL;
    s += s[strspn(s, " ")] ? strspn(s, " ") : 0; /* Blanks may precede a unit, not end the text. */
    if (*s) {
        const char *units = "kmg", *u = strchr(units, *s | 0x20);
        if (!u || (s[1] && strcasecmp(s + 1, "iB") != 0))
            return EINVAL;
        shift = 10 * (unsigned)(u - units + 1);
    }
    if (rc == ERANGE || v > (UINT64_MAX >> shift))
        return ERANGE;
    *out = v << shift;
    return 0;
}

static int parse_duration(const char *s, uint64_t *out_ns)
{
    uint64_t whole, frac_ns = 0, unit = 1000000000;
    int rc = scan_u64(&s, &whole);
    if (rc == EINVAL)
        return EINVAL;
    if (*s == '.') {
        /* Keep nine fractional digits (nanoseconds of a second); cut the rest. */
        uint64_t scale = 100000000;
        if (!is_digit(*++s))
            return EINVAL;
        for (; is_digit(*s); s++, scale /= 10)
            frac_ns += (uint64_t)(*s - '0') * scale;
    }
    s += s[strspn(s, " ")] ? strspn(s, " ") : 0;
    if (*s) {
        static const char *const names[] = {"ns", "us", "ms", "s"};
        static const uint64_t ns[] = {1, 1000, 1000000, 1000000000};
        int i = name_index(s, names, ARRAY_SIZE(names));
        if (i < 0)
            return EINVAL;
        unit = ns[i];
    }
    /* frac_ns < 1e9 and unit <= 1e9, so the product fits in 64 bits. */
    uint64_t frac = frac_ns * unit / 1000000000;
    if (rc == ERANGE || whole > UINT64_MAX / unit || whole * unit > UINT64_MAX - frac)
        return ERANGE;
    *out_ns = whole * unit + frac;
    return 0;
}

int config_parse_ipv4(const char *s, struct in_addr *out)
{
    uint32_t addr = 0;
    for (int i = 0; s && i < 4; i++) {
        if (i > 0 && *s++ != '.')
            return EINVAL;
        /* A leading zero would read as octal to inet_aton(); refuse it. */
        if (!is_digit(*s) || (s[0] == '0' && is_digit(s[1])))
            return EINVAL;
        unsigned v = 0;
        for (int n = 0; is_digit(*s) && n < 4; s++, n++)
            v = v * 10 + (unsigned)(*s - '0');
        if (v > 255)
            return EINVAL;
        addr = addr << 8 | v;
    }
    if (!s || !out || *s)
        return EINVAL;
    out->s_addr = htonl(addr);
    return 0;
}

int config_parse_mac(const char *s, uint8_t out[6])
{
    uint8_t mac[6];
    for (int i = 0; s && i < 6; i++, s += 2) {
        if (i > 0 && *s++ != ':')
            return EINVAL;
        int hi = hex_value(s[0]), lo = hi < 0 ? -1 : hex_value(s[1]);
        if (lo < 0)
            return EINVAL;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    if (!s || !out || *s)
        return EINVAL;
    memcpy(out, mac, sizeof(mac));
    return 0;
}

int config_parse_bool(const char *s, bool *out)
{
    static const char *const names[] = {"false", "true", "no", "yes", "off", "on", "0", "1"};
    int i = s && out ? name_index(s, names, ARRAY_SIZE(names)) : -1;
    if (i < 0)
        return EINVAL;
    *out = i % 2;
    return 0;
}

/* The public parsers only say valid or not. */
int config_parse_u64(const char *s, uint64_t *out)
{
    return s && out && parse_u64(s, out) == 0 ? 0 : EINVAL;
}

int config_parse_size(const char *s, uint64_t *out)
{
    return s && out && parse_size(s, out) == 0 ? 0 : EINVAL;
}

int config_parse_duration(const char *s, uint64_t *out_ns)
{
    return s && out_ns && parse_duration(s, out_ns) == 0 ? 0 : EINVAL;
}

/* ---- Lists: the EAL arguments and the ARP table ---- */

/* Lists are built aside and committed whole, so a bad entry leaves the old list. */
struct eal_list {
    int n;
    char *argv[CONFIG_MAX_EAL];
};

static int eal_add(struct ctx *x, const struct key *k, struct eal_list *l, const char *s, size_t len)
{
    if (l->n == CONFIG_MAX_EAL)
        return key_err(x, k, "more than %d entries", CONFIG_MAX_EAL);
    if (!(l->argv[l->n] = strndup(s, len))) {
        key_err(x, k, "out of memory");
        return ENOMEM;
    }
    l->n++;
    return 0;
}

static void eal_drop(struct eal_list *l)
{
    while (l->n > 0)
        free(l->argv[--l->n]);
}

static void eal_commit(struct config *c, const struct eal_list *l)
{
    config_free(c);
    memcpy(c->eal_argv, l->argv, (size_t)l->n * sizeof(l->argv[0]));
    c->eal_argc = l->n;
}

/* EAL_INIT: arguments separated by blanks. */
static int set_eal_words(struct ctx *x, const struct key *k, const char *s)
{
    struct eal_list l = {0};
    for (s += strspn(s, " \t"); *s; s += strspn(s, " \t")) {
        size_t len = strcspn(s, " \t");
        int rc = eal_add(x, k, &l, s, len);
        if (rc) {
            eal_drop(&l);
            return rc;
        }
        s += len;
    }
    eal_commit(x->c, &l);
    return 0;
}

struct arp_list {
    int n;
    struct config_arp e[CONFIG_MAX_ARP];
};

static int arp_add(struct ctx *x, const struct key *k, struct arp_list *l, const char *mac, const char *ip)
{
    struct config_arp a;
    if (config_parse_mac(mac, a.mac))
        return key_err(x, k, "\"%.*s\" is not a MAC address (want aa:bb:cc:dd:ee:ff)", QUOTE_MAX, mac);
    if (config_parse_ipv4(ip, &a.ip))
        return key_err(x, k, "\"%.*s\" (for %s) is not an IPv4 address", QUOTE_MAX, ip, mac);
    for (int i = 0; i < l->n; i++)
        if (l->e[i].ip.s_addr == a.ip.s_addr)
            return key_err(x, k, "%s is listed twice", ip);
    if (l->n == CONFIG_MAX_ARP)
        return key_err(x, k, "more than %d entries", CONFIG_MAX_ARP);
    l->e[l->n++] = a;
    return 0;
}

static void arp_commit(struct config *c, const struct arp_list *l)
{
    memcpy(c->arp_table, l->e, (size_t)l->n * sizeof(l->e[0]));
    c->n_arp = l->n;
}

/* ARP_TABLE: "mac=ip,mac=ip"; blanks around either part are allowed. */
static int set_arp_text(struct ctx *x, const struct key *k, const char *s)
{
    struct arp_list l = {0};
    for (; *s; s += *s == ',') {
        size_t len = strcspn(s, ",");
        char mac[32], ip[32];
        int end = -1, rc = 0;
        /* Longer parts stop the scan early and so fail the length check. */
        if (sscanf(s, " %31[^=, \t] = %31[^, \t] %n", mac, ip, &end) == 2 && (size_t)end == len)
            rc = arp_add(x, k, &l, mac, ip);
        else if (strspn(s, " \t") < len)
            rc = key_err(x, k, "entry \"%.*s\" is not mac=ip", (int)MIN(len, QUOTE_MAX), s);
        if (rc)
            return rc;
        s += len;
    }
    arp_commit(x->c, &l);
    return 0;
}

/* ---- Setting one key ---- */

/* How the numeric types read and bound their values. */
static const struct {
    int (*parse)(const char *s, uint64_t *out);
    uint64_t max;
    const char *what;
} numeric[] = {
    [T_U32] = {parse_u64, UINT32_MAX, "not an integer"},
    [T_U64] = {parse_u64, UINT64_MAX, "not an integer"},
    [T_SIZE] = {parse_size, UINT64_MAX, "not a size (bytes, or a number with K, M or G)"},
    [T_DURATION] = {parse_duration, UINT64_MAX, "not a duration (seconds, or a number with ns, us, ms or s)"},
};

/* Sets @k from @val, a YAML scalar or an environment value. */
static int set_value(struct ctx *x, const struct key *k, const char *val)
{
    void *p = (char *)x->c + k->off;
    uint64_t u;
    int rc;
    char problem[64];

    switch (k->type) {
    case T_STR:
        if (strlen(val) >= k->size) {
            snprintf(problem, sizeof(problem), "too long (at most %zu characters)", k->size - 1);
            return bad_value(x, k, val, problem);
        }
        strcpy(p, val);
        break;
    case T_IPV4:
        if (config_parse_ipv4(val, p))
            return bad_value(x, k, val, "not an IPv4 address");
        break;
    case T_MAC:
        if (config_parse_mac(val, p))
            return bad_value(x, k, val, "not a MAC address (want aa:bb:cc:dd:ee:ff)");
        break;
    case T_BOOL:
        if (config_parse_bool(val, p))
            return bad_value(x, k, val, "not a boolean (true/false, yes/no, on/off, 1/0)");
        break;
    case T_U32:
    case T_U64:
    case T_SIZE:
    case T_DURATION:
        rc = numeric[k->type].parse(val, &u);
        if (rc == EINVAL)
            return bad_value(x, k, val, numeric[k->type].what);
        if (rc == ERANGE || u > numeric[k->type].max) {
            snprintf(problem, sizeof(problem), "out of range (at most %" PRIu64 ")", numeric[k->type].max);
            return bad_value(x, k, val, k->type == T_U32 ? problem : "out of range");
        }
        if (k->type == T_U32)
            *(uint32_t *)p = (uint32_t)u;
        else
            *(uint64_t *)p = u;
        break;
    case T_HUGE:
        if ((rc = name_index(val, huge_names, ARRAY_SIZE(huge_names))) < 0)
            return bad_value(x, k, val, "not one of auto, on, off");
        *(int *)p = rc;
        break;
    case T_CC:
        if ((rc = name_index(val, cc_names, ARRAY_SIZE(cc_names))) < 0)
            return bad_value(x, k, val, "not one of cubic, newreno");
        *(int *)p = rc;
        break;
    case T_LIBOS:
        if ((rc = name_index(val, libos_names, ARRAY_SIZE(libos_names))) < 0)
            return bad_value(x, k, val, "an unknown libOS (known: " KNOWN_LIBOSES ")");
        snprintf(p, k->size, "%s", libos_names[rc]);
        break;
    case T_STRLIST:
        if ((rc = set_eal_words(x, k, val)))
            return rc;
        break;
    case T_ARPMAP:
        if ((rc = set_arp_text(x, k, val)))
            return rc;
        break;
    }
    if (k->flag >= 0)
        *(bool *)((char *)x->c + k->flag) = true;
    return 0;
}

/* Unless the MSS was given, it follows the MTU (IPv4 and TCP headers are 40 bytes). */
static void follow_mtu(struct config *c)
{
    if (!c->mss_set)
        c->mss = c->mtu > 40 ? c->mtu - 40 : 0;
}

/* ---- YAML ---- */

/* A plain empty scalar, "~" or "null": the key is there with no value. */
static bool is_null(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return !n;
    const char *s = (const char *)n->data.scalar.value;
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (!*s || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0);
}

/* The text of a scalar, or NULL if it is not a scalar or holds a NUL byte. */
static const char *scalar(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return NULL;
    const char *s = (const char *)n->data.scalar.value;
    return strlen(s) == n->data.scalar.length ? s : NULL;
}

static const char *kind(const yaml_node_t *n)
{
    static const char *const kinds[] = {[YAML_NO_NODE] = "nothing",
                                        [YAML_SCALAR_NODE] = "a value",
                                        [YAML_SEQUENCE_NODE] = "a list",
                                        [YAML_MAPPING_NODE] = "a mapping"};
    return kinds[n ? n->type : YAML_NO_NODE];
}

static int set_eal_node(struct ctx *x, const struct key *k, yaml_document_t *d, yaml_node_t *v)
{
    struct eal_list l = {0};
    if (v->type != YAML_SEQUENCE_NODE)
        return key_err(x, k, "expected a list of strings, not %s", kind(v));
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        const char *arg = scalar(yaml_document_get_node(d, *it));
        int rc = arg ? eal_add(x, k, &l, arg, strlen(arg)) : key_err(x, k, "entry %d is not a string", l.n + 1);
        if (rc) {
            eal_drop(&l);
            return rc;
        }
    }
    eal_commit(x->c, &l);
    return 0;
}

static int set_arp_node(struct ctx *x, const struct key *k, yaml_document_t *d, yaml_node_t *v)
{
    struct arp_list l;
    if (v->type != YAML_MAPPING_NODE)
        return key_err(x, k, "expected a mapping of \"mac\": \"ip\", not %s", kind(v));
    l.n = 0;
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
        const char *mac = scalar(yaml_document_get_node(d, pr->key));
        const char *ip = scalar(yaml_document_get_node(d, pr->value));
        if (!mac || !ip)
            return key_err(x, k, "entry %d is not \"mac\": \"ip\"", l.n + 1);
        int rc = arp_add(x, k, &l, mac, ip);
        if (rc)
            return rc;
    }
    arp_commit(x->c, &l);
    return 0;
}

static int set_node(struct ctx *x, const struct key *k, yaml_document_t *d, yaml_node_t *v)
{
    if (is_null(v))
        return 0; /* "key:" with nothing after it keeps what was there. */
    if (k->type == T_STRLIST)
        return set_eal_node(x, k, d, v);
    if (k->type == T_ARPMAP)
        return set_arp_node(x, k, d, v);
    if (v->type != YAML_SCALAR_NODE)
        return key_err(x, k, "expected a single value, not %s", kind(v));
    return scalar(v) ? set_value(x, k, scalar(v)) : key_err(x, k, "value contains a NUL byte");
}

/* The key @name in @section; or NULL, with *parent telling whether some key
 * lives below @name ("keepalive" for "keepalive.enabled"). */
static const struct key *find_key(const char *section, const char *name, bool *parent)
{
    size_t n = strlen(name);
    *parent = false;
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        if (!keys[i].name || strcmp(keys[i].section, section) != 0 || strncmp(keys[i].name, name, n) != 0)
            continue;
        if (keys[i].name[n] == '\0')
            return &keys[i];
        *parent |= keys[i].name[n] == '.';
    }
    return NULL;
}

/* The section named @s (@len bytes), as spelled in keys[], or NULL. */
static const char *section_named(const char *s, size_t len)
{
    for (size_t i = 0; s && i < ARRAY_SIZE(keys); i++)
        if (strlen(keys[i].section) == len && memcmp(keys[i].section, s, len) == 0)
            return keys[i].section;
    return NULL;
}

/* The section named by a top-level key, or NULL. */
static const char *find_section(const yaml_node_t *n)
{
    const char *s = scalar(n);
    return s ? section_named(s, strlen(s)) : NULL;
}

/* ---- Near misses: "did you mean" ---- */

/* Names longer than this are far from every name of ours. */
#define NEAR_MAX 40

/* The optimal string alignment distance between @a and @b: insertions,
 * deletions, substitutions and swaps of two neighbours cost 1 each; case is
 * ignored. */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > NEAR_MAX || lb > NEAR_MAX)
        return UINT_MAX;
    unsigned d[NEAR_MAX + 1][NEAR_MAX + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ai = tolower((unsigned char)a[i - 1]), bj = tolower((unsigned char)b[j - 1]);
            unsigned v = MIN(d[i - 1][j], d[i][j - 1]) + 1;
            v = MIN(v, d[i - 1][j - 1] + (ai != bj));
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) && tolower((unsigned char)a[i - 2]) == bj)
                v = MIN(v, d[i - 2][j - 2] + 1);
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

/* The distance at which @typo reads as a misspelling of @known (one
 * mistake, and one more for every six letters), or UINT_MAX if farther. */
static unsigned near_miss(const char *typo, const char *known)
{
    /* Each edit changes the length by at most one: names whose lengths
     * differ by more cannot be near, and need no table (a file can hold
     * a hundred thousand unknown sections). */
    size_t lt = strlen(typo), lk = strlen(known), most = 1 + lk / 6;
    if (lt > lk + most || lk > lt + most)
        return UINT_MAX;
    unsigned dist = edit_distance(typo, known);
    return dist <= most ? dist : UINT_MAX;
}

/* Our section nearest to the unknown section @name, or NULL if none is near. */
static const char *nearest_section(const char *name)
{
    const char *best = NULL;
    unsigned best_dist = UINT_MAX;
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        if (i > 0 && strcmp(keys[i].section, keys[i - 1].section) == 0)
            continue; /* The rows of a section are together: try each section once. */
        unsigned dist = near_miss(name, keys[i].section);
        if (dist < best_dist) {
            best_dist = dist;
            best = keys[i].section;
        }
    }
    return best;
}

/* Writes "; did you mean <section>.<key>?" into @out for the key of @section
 * nearest to the unknown @name ("a.b": only keys under "a." compete), or
 * an empty string if none is near. */
static void nearest_key(const char *section, const char *name, char *out, size_t outlen)
{
    const char *dot = strrchr(name, '.'), *last = dot ? dot + 1 : name;
    size_t plen = (size_t)(last - name);
    unsigned best_dist = UINT_MAX;
    out[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        const char *kn = keys[i].name;
        if (!kn || strcmp(keys[i].section, section) != 0 || strncmp(kn, name, plen) != 0)
            continue;
        char cand[NEAR_MAX + 1];
        size_t clen = strcspn(kn + plen, ".");
        if (clen > NEAR_MAX)
            continue;
        memcpy(cand, kn + plen, clen);
        cand[clen] = '\0';
        unsigned dist = near_miss(last, cand);
        if (dist < best_dist) {
            best_dist = dist;
            snprintf(out, outlen, "; did you mean %s.%.*s%s?", section, (int)plen, name, cand);
        }
    }
}

/* Copies at most 100 bytes of @s into @out (of at least 101) with control
 * characters made '?', to keep a logged name on one line. */
static void printable(char *out, const char *s, size_t len)
{
    size_t n = MIN(len, 100);
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[n] = '\0';
}

/* Walks one mapping inside @section; @prefix is the path down to it ("" at the top). */
static int walk(struct ctx *x, yaml_document_t *d, const char *section, const char *prefix, yaml_node_t *map)
{
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = yaml_document_get_node(d, pr->key);
        yaml_node_t *vn = yaml_document_get_node(d, pr->value);
        char name[128];
        if (!kn || kn->type != YAML_SCALAR_NODE)
            return put_err(x->err, x->errlen, "%s%s%s: a key is %s, not a name (%s)", section, *prefix ? "." : "",
                           prefix, kind(kn), x->origin);
        snprintf(name, sizeof(name), "%s%s%.*s", prefix, *prefix ? "." : "", (int)MIN(kn->data.scalar.length, 100),
                 (const char *)kn->data.scalar.value);
        /* Keep warnings on one line; such names match no key anyway. */
        for (char *p = name; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        if (--x->keys_left < 0)
            return put_err(x->err, x->errlen, "YAML has more than %d keys in known sections (%s)", YAML_KEYS_MAX,
                           x->origin);
        bool parent;
        const struct key *k = find_key(section, name, &parent);
        int rc = 0;
        if (k) {
            rc = set_node(x, k, d, vn);
        } else if (!parent) {
            char hint[192];
            if (++x->unknown <= UNKNOWN_LOG_MAX) {
                nearest_key(section, name, hint, sizeof(hint));
                log_warn("%s.%s: unknown key, ignored%s (%s)", section, name, hint, x->origin);
            }
        } else if (is_null(vn)) {
            continue;
        } else if (vn->type != YAML_MAPPING_NODE) {
            return put_err(x->err, x->errlen, "%s.%s: expected a mapping, not %s (%s)", section, name, kind(vn),
                           x->origin);
        } else {
            rc = walk(x, d, section, name, vn);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int yaml_error(const yaml_parser_t *p, const char *origin, char *err, size_t errlen)
{
    const char *problem = p->problem ? p->problem : "unknown problem";
    if (p->error == YAML_MEMORY_ERROR) {
        put_err(err, errlen, "out of memory parsing YAML (%s)", origin);
        return ENOMEM;
    }
    if (p->error == YAML_READER_ERROR)
        return put_err(err, errlen, "YAML error at byte %zu: %s (%s)", p->problem_offset, problem, origin);
    char context[96] = "";
    if (p->context)
        snprintf(context, sizeof(context), " %s at line %zu", p->context, p->context_mark.line + 1);
    return put_err(err, errlen, "YAML syntax error at line %zu, column %zu: %s%s (%s)", p->problem_mark.line + 1,
                   p->problem_mark.column + 1, problem, context, origin);
}

/* One open collection during the first pass. */
struct level {
    bool map;     /* a mapping, else a sequence */
    bool known;   /* the root mapping's latest key names one of our sections */
    size_t items; /* nodes begun in it so far (in a mapping, keys and values both count) */
    char key[48]; /* a mapping's latest key, cut short */
};

/* The path from the root to the node just begun inside st[d - 1], as in
 * "dpdk.eal_init[1]"; a key is shown by the path of its mapping. */
static void level_path(const struct level *st, int d, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < d && n < outlen; i++) {
        int w;
        if (!st[i].map)
            w = snprintf(out + n, outlen - n, "[%zu]", st[i].items - 1);
        else if (i < d - 1 || st[i].items % 2 == 0)
            w = snprintf(out + n, outlen - n, "%s%s", n ? "." : "", st[i].key);
        else
            break;
        n += w > 0 ? (size_t)w : 0;
    }
}

/*
 * A first pass over the events that stops at the first syntax error, at
 * nesting deeper than YAML_DEPTH_MAX or at too many anchors, so that no
 * input takes long to load. It also refuses what the loaded document would
 * hide: a second document (yaml_parser_load() reads only the first), and an
 * alias inside one of our sections. An alias makes a few bytes stand for a
 * whole mapping again and again ("billion laughs"), and none of our keys
 * needs one; the application's own sections may use them, since we never
 * walk those.
 */
static int check_yaml(yaml_parser_t *p, const char *origin, char *err, size_t errlen)
{
    yaml_event_t ev;
    struct level st[YAML_DEPTH_MAX + 1];
    int depth = 0, anchors = 0, docs = 0, rc = 0;
    for (bool end = false; !end && !rc;) {
        if (!yaml_parser_parse(p, &ev))
            return yaml_error(p, origin, err, errlen);
        yaml_event_type_t t = ev.type;
        end = t == YAML_STREAM_END_EVENT;
        bool node = t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT || t == YAML_SEQUENCE_START_EVENT ||
                    t == YAML_MAPPING_START_EVENT;
        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1)
            rc = put_err(err, errlen, "YAML holds more than one document (the second begins at line %zu) (%s)",
                         ev.start_mark.line + 1, origin);
        bool root_key = node && depth == 1 && st[0].map && st[0].items % 2 == 0;
        if (node && depth > 0) {
            struct level *l = &st[depth - 1];
            if (l->map && l->items % 2 == 0) {
                bool sc = t == YAML_SCALAR_EVENT;
                const char *k = sc ? (const char *)ev.data.scalar.value : "?";
                size_t klen = sc ? ev.data.scalar.length : 1;
                snprintf(l->key, sizeof(l->key), "%.*s", (int)MIN(klen, sizeof(l->key) - 1), k);
                if (depth == 1)
                    l->known = sc && section_named(k, klen);
            }
            l->items++;
        }
        /* Inside one of our sections: in the value of a root key naming one. */
        bool ours = depth > 0 && st[0].map && st[0].known && st[0].items % 2 == 0;
        /* An alias as a section name could stand for one of ours and hide
         * the section from the checks above. */
        if (t == YAML_ALIAS_EVENT && root_key && !rc)
            rc = put_err(err, errlen, "YAML alias (*%.32s) as a section name, at line %zu (%s)",
                         (const char *)ev.data.alias.anchor, ev.start_mark.line + 1, origin);
        if (t == YAML_ALIAS_EVENT && ours && !rc) {
            char path[192];
            level_path(st, depth, path, sizeof(path));
            rc = put_err(err, errlen,
                         "%s: YAML aliases (*%.32s) are not allowed in libdemi's sections, at line %zu (%s)", path,
                         (const char *)ev.data.alias.anchor, ev.start_mark.line + 1, origin);
        }
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (depth <= YAML_DEPTH_MAX)
                st[depth] = (struct level){.map = t == YAML_MAPPING_START_EVENT};
            depth++;
        }
        depth -= t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT;
        anchors += (t == YAML_SCALAR_EVENT && ev.data.scalar.anchor) ||
                   (t == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor) ||
                   (t == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor);
        if (!rc && depth > YAML_DEPTH_MAX)
            rc = put_err(err, errlen, "YAML nested deeper than %d levels at line %zu (%s)", YAML_DEPTH_MAX,
                         ev.start_mark.line + 1, origin);
        else if (!rc && anchors > YAML_ANCHORS_MAX)
            rc = put_err(err, errlen, "YAML has more than %d anchors, at line %zu (%s)", YAML_ANCHORS_MAX,
                         ev.start_mark.line + 1, origin);
        yaml_event_delete(&ev);
    }
    return rc;
}

/* ---- Duplicate keys ---- */

struct dup_key {
    const char *s;
    size_t len;
    yaml_mark_t mark;
};

/* By text, then by position, so that equal keys sit together, first one first. */
static int dup_cmp(const void *pa, const void *pb)
{
    const struct dup_key *a = pa, *b = pb;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    int c = memcmp(a->s, b->s, a->len);
    if (c)
        return c;
    return a->mark.index < b->mark.index ? -1 : a->mark.index > b->mark.index;
}

struct dup_walk {
    yaml_document_t *d;
    uint8_t *seen; /* one bit per node: aliases share nodes, each is looked at once */
    const char *origin;
    char *err;
    size_t errlen;
    char path[256];
};

/* Refuses a key that a mapping at or below @n holds twice: YAML forbids it
 * (YAML 1.2.2, 3.2.1.1: keys are unique) but libyaml keeps both, and we
 * would take the last one silently. Every mapping is checked, the
 * application's sections too. w->path holds the path to @n, @plen long.
 * Each node is looked at once, but aliases can chain nodes deeper than the
 * text nests them: @depth bounds the recursion, so that no file can take
 * the stack of the thread calling demi_init. */
static int check_dups(struct dup_walk *w, yaml_node_t *n, size_t plen, int depth)
{
    size_t id = (size_t)(n - w->d->nodes.start);
    if (w->seen[id / 8] & (1u << (id % 8)))
        return 0;
    if (depth > 4 * YAML_DEPTH_MAX)
        return put_err(w->err, w->errlen, "YAML nested deeper than %d levels through aliases, under %.40s... (%s)",
                       4 * YAML_DEPTH_MAX, w->path, w->origin);
    w->seen[id / 8] |= (uint8_t)(1u << (id % 8));
    size_t cap = sizeof(w->path);
    int rc = 0;
    if (n->type == YAML_SEQUENCE_NODE) {
        size_t i = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top && !rc; it++, i++) {
            yaml_node_t *v = yaml_document_get_node(w->d, *it);
            snprintf(w->path + plen, cap - plen, "[%zu]", i);
            rc = v ? check_dups(w, v, strlen(w->path), depth + 1) : 0;
        }
    } else if (n->type == YAML_MAPPING_NODE) {
        yaml_node_pair_t *start = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
        struct dup_key *k = malloc((size_t)(top - start) * sizeof(*k) + 1);
        size_t nk = 0;
        if (!k) {
            put_err(w->err, w->errlen, "out of memory checking YAML keys (%s)", w->origin);
            return ENOMEM;
        }
        for (yaml_node_pair_t *pr = start; pr < top; pr++) {
            yaml_node_t *kn = yaml_document_get_node(w->d, pr->key);
            if (kn && kn->type == YAML_SCALAR_NODE)
                k[nk++] = (struct dup_key){(const char *)kn->data.scalar.value, kn->data.scalar.length, kn->start_mark};
        }
        qsort(k, nk, sizeof(*k), dup_cmp);
        for (size_t i = 1; i < nk && !rc; i++) {
            if (k[i].len != k[i - 1].len || memcmp(k[i].s, k[i - 1].s, k[i].len) != 0)
                continue;
            char name[101], lines[64];
            size_t l1 = k[i - 1].mark.line + 1, l2 = k[i].mark.line + 1;
            printable(name, k[i].s, k[i].len);
            if (l1 == l2)
                snprintf(lines, sizeof(lines), "twice at line %zu", l1);
            else
                snprintf(lines, sizeof(lines), "at lines %zu and %zu", l1, l2);
            rc = put_err(w->err, w->errlen, "%.*s%s%s: duplicate %s, %s (%s)", (int)plen, w->path, plen ? "." : "",
                         name, plen ? "key" : "section", lines, w->origin);
        }
        free(k);
        for (yaml_node_pair_t *pr = start; pr < top && !rc; pr++) {
            yaml_node_t *kn = yaml_document_get_node(w->d, pr->key), *v = yaml_document_get_node(w->d, pr->value);
            char name[101] = "?";
            if (kn && kn->type == YAML_SCALAR_NODE)
                printable(name, (const char *)kn->data.scalar.value, kn->data.scalar.length);
            snprintf(w->path + plen, cap - plen, "%s%s", plen ? "." : "", name);
            rc = v ? check_dups(w, v, strlen(w->path), depth + 1) : 0;
        }
    }
    w->path[plen] = '\0';
    return rc;
}

static int check_doc_dups(yaml_document_t *d, const char *origin, char *err, size_t errlen)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    if (!root)
        return 0;
    struct dup_walk w = {.d = d, .origin = origin, .err = err, .errlen = errlen};
    size_t nodes = (size_t)(d->nodes.top - d->nodes.start);
    w.seen = calloc(nodes / 8 + 1, 1);
    if (!w.seen) {
        put_err(err, errlen, "out of memory checking YAML keys (%s)", origin);
        return ENOMEM;
    }
    int rc = check_dups(&w, root, 0, 0);
    free(w.seen);
    return rc;
}

/* An unknown top-level section: a near miss of ours warns like an unknown
 * key; anything else belongs to the application ("client:", "server:").
 * Counted with the unknown keys, and as they are, only the first
 * UNKNOWN_LOG_MAX are logged. */
static void unknown_section(const yaml_node_t *kn, const char *origin, int *unknown)
{
    const char *s = scalar(kn), *near;
    char name[101];
    if (!s || ++*unknown > UNKNOWN_LOG_MAX)
        return;
    printable(name, s, strlen(s));
    if ((near = nearest_section(s)))
        log_warn("%s: unknown section, ignored; did you mean %s? (%s)", name, near, origin);
    else
        log_info("%s: not a libdemi section, left to the application (%s)", name, origin);
}

static int open_parser(yaml_parser_t *p, const char *text, size_t len, const char *origin, char *err, size_t errlen)
{
    if (!yaml_parser_initialize(p)) {
        put_err(err, errlen, "out of memory parsing YAML (%s)", origin);
        return ENOMEM;
    }
    yaml_parser_set_input_string(p, (const unsigned char *)(text ? text : ""), text ? len : 0);
    return 0;
}

/* Parses @text over @c; *empty (if given) tells whether it held no settings at all. */
static int parse_text(struct config *c, const char *text, size_t len, const char *origin, bool *empty, char *err,
                      size_t errlen)
{
    struct ctx x = {.c = c, .err = err, .errlen = errlen, .origin = origin, .keys_left = YAML_KEYS_MAX};
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = 0;

    if ((rc = open_parser(&parser, text, len, origin, err, errlen)))
        return rc;
    rc = check_yaml(&parser, origin, err, errlen);
    yaml_parser_delete(&parser);
    if (rc || (rc = open_parser(&parser, text, len, origin, err, errlen)))
        return rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_error(&parser, origin, err, errlen);
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (empty)
        *empty = !root || is_null(root);
    if (root && !is_null(root) && root->type != YAML_MAPPING_NODE)
        rc = put_err(err, errlen, "the top level is %s, not a mapping of sections (%s)", kind(root), origin);
    if (!rc)
        rc = check_doc_dups(&doc, origin, err, errlen);
    for (yaml_node_pair_t *pr = root && root->type == YAML_MAPPING_NODE ? root->data.mapping.pairs.start : NULL;
         pr && pr < root->data.mapping.pairs.top && !rc; pr++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, pr->key), *v = yaml_document_get_node(&doc, pr->value);
        const char *section = find_section(kn);
        if (!section)
            unknown_section(kn, origin, &x.unknown);
        if (!section || is_null(v))
            continue;
        if (v->type != YAML_MAPPING_NODE)
            rc = put_err(err, errlen, "%s: expected a mapping of keys, not %s (%s)", section, kind(v), origin);
        else
            rc = walk(&x, &doc, section, "", v);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (x.unknown > UNKNOWN_LOG_MAX)
        log_warn("%d more unknown keys or sections ignored, not listed (%s)", x.unknown - UNKNOWN_LOG_MAX, origin);
    if (!rc)
        follow_mtu(c);
    return rc;
}

int config_parse_yaml(struct config *c, const char *text, size_t len, char *err, size_t errlen)
{
    int rc = begin(c, __func__, err, errlen);
    return rc ? rc : parse_text(c, text, len, "YAML text", NULL, err, errlen);
}

/* ---- Files, environment, validation ---- */

/* What a file that is not a regular one is, for the message. */
static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "of an unknown type";
}

/* Reads the whole file at @path into a heap buffer the caller frees. Only a
 * regular file of at most CONFIG_FILE_MAX bytes is read: a FIFO would block
 * until some writer came (forever, inside demi_init()), and a device such as
 * /dev/zero never ends. */
static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    /* O_NONBLOCK makes the open itself return at once on a FIFO without a
     * writer; O_NOCTTY keeps a terminal named by mistake from becoming ours. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        put_err(err, errlen, "cannot open config file %s: %s", path, strerror(e));
        return e;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = errno;
        put_err(err, errlen, "cannot read config file %s: %s", path, strerror(rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        put_err(err, errlen, "config file %s is %s, not a regular file", path, file_kind(st.st_mode));
    } else if (st.st_size > (off_t)CONFIG_FILE_MAX) {
        rc = EFBIG;
        put_err(err, errlen, "cannot read config file %s: larger than 1 MiB (%jd bytes)", path, (intmax_t)st.st_size);
    }
    if (rc) {
        close(fd);
        return rc;
    }
    /* The size from fstat() may be stale or zero (files under /proc): the
     * buffer starts at that size plus a byte and grows while reads fill it,
     * and reading up to the limit plus a byte tells a too-large file apart. */
    size_t cap = MAX((size_t)st.st_size + 1, 256), n = 0;
    char *buf = malloc(cap);
    rc = buf ? 0 : ENOMEM;
    while (!rc && n <= CONFIG_FILE_MAX) {
        if (n == cap) {
            size_t bigger = MIN(2 * cap, CONFIG_FILE_MAX + 1);
            char *p = realloc(buf, bigger);
            if (!p) {
                rc = ENOMEM;
                break;
            }
            buf = p;
            cap = bigger;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r > 0)
            n += (size_t)r;
        else if (r == 0)
            break;
        else if (errno != EINTR)
            rc = errno;
    }
    close(fd);
    if (!rc && n > CONFIG_FILE_MAX)
        rc = EFBIG;
    if (rc) {
        put_err(err, errlen, "cannot read config file %s: %s", path, rc == EFBIG ? "larger than 1 MiB" : strerror(rc));
        free(buf);
        return rc;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

int config_apply_env(struct config *c, char *err, size_t errlen)
{
    struct ctx x = {.c = c, .err = err, .errlen = errlen};
    int rc = begin(c, __func__, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        const char *v = keys[i].env ? getenv(keys[i].env) : NULL;
        if (!v || !*v)
            continue; /* Empty counts as unset. */
        x.envval = v;
        rc = set_value(&x, &keys[i], v);
        if (rc)
            return rc;
    }
    follow_mtu(c);
    return 0;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
    int rc = begin(c, __func__, err, errlen);
    if (rc)
        return rc;
    if (!memchr(c->libos, '\0', sizeof(c->libos)) || name_index(c->libos, libos_names, ARRAY_SIZE(libos_names)) < 0)
        return put_err(err, errlen, "libdemi.libos: \"%.*s\" is an unknown libOS (known: " KNOWN_LIBOSES ")",
                       (int)sizeof(c->libos), c->libos);
    uint32_t mtu_max = c->enable_jumbo_frames ? 9216 : 1500;
    if (c->mtu < 68 || c->mtu > mtu_max)
        return put_err(err, errlen, "inetstack_config.mtu: %" PRIu32 " is out of range [68, %" PRIu32 "]%s", c->mtu,
                       mtu_max, c->enable_jumbo_frames ? "" : " (enable_jumbo_frames allows up to 9216)");
    /* 40 bytes of IPv4 and TCP headers; an MTU below 104 leaves no valid MSS at all. */
    uint32_t mss_max = c->mtu - 40;
    if (mss_max < 64)
        return put_err(err, errlen,
                       "inetstack_config.mss: MTU %" PRIu32 " leaves %" PRIu32
                       " bytes for a segment, less than the smallest MSS (64)",
                       c->mtu, mss_max);
    if (c->mss < 64 || c->mss > mss_max)
        return put_err(err, errlen,
                       "inetstack_config.mss: %" PRIu32 " is out of range [64, %" PRIu32 "] (MTU %" PRIu32 " minus 40)",
                       c->mss, mss_max, c->mtu);
    if (c->heap_size < (16u << 20))
        return put_err(err, errlen, "libdemi.heap_size: %" PRIu64 " bytes is too small (at least 16M)", c->heap_size);
    if (c->heap_reserve_set && c->heap_reserve > c->heap_size / 2)
        return put_err(err, errlen,
                       "libdemi.heap_reserve: %" PRIu64 " bytes is more than half the heap (heap_size %" PRIu64 ")",
                       c->heap_reserve, c->heap_size);
    if (c->hugepages < CONFIG_HUGE_AUTO || c->hugepages > CONFIG_HUGE_OFF)
        return put_err(err, errlen, "libdemi.hugepages: %d is not one of auto, on, off", c->hugepages);
    /* The parsers keep these right; a config filled in by hand may not. */
    if (!memchr(c->linux_interface_name, '\0', sizeof(c->linux_interface_name)))
        return put_err(err, errlen, "raw_socket.linux_interface_name: not terminated within %d bytes", CONFIG_IFNAMSIZ);
    if (c->eal_argc < 0 || c->eal_argc > CONFIG_MAX_EAL)
        return put_err(err, errlen, "dpdk.eal_init: %d entries (at most %d)", c->eal_argc, CONFIG_MAX_EAL);
    if (c->dpdk_mbufs < 1024 || c->dpdk_mbufs > (1u << 20))
        return put_err(err, errlen, "dpdk.mbufs: %u is out of range [1024, 1048576]", c->dpdk_mbufs);
    if (c->dpdk_rx_ring < 64 || c->dpdk_rx_ring > 16384 || c->dpdk_tx_ring < 64 || c->dpdk_tx_ring > 16384)
        return put_err(err, errlen, "dpdk.rx_ring/tx_ring: %u/%u: each must be in [64, 16384]", c->dpdk_rx_ring,
                       c->dpdk_tx_ring);
    if (c->dpdk_rx_ring + 512 > c->dpdk_mbufs)
        return put_err(err, errlen,
                       "dpdk.mbufs: %u cannot fill a %u-descriptor receive ring and leave 512 to the stack",
                       c->dpdk_mbufs, c->dpdk_rx_ring);
    if (c->queues < 1 || c->queues > CONFIG_MAX_QUEUES)
        return put_err(err, errlen, "libdemi.queues: %" PRIu32 " is out of range [1, %d]", c->queues, CONFIG_MAX_QUEUES);
    if (c->queue != UINT32_MAX && c->queue >= c->queues)
        return put_err(err, errlen, "libdemi.queue: %" PRIu32 " is not below libdemi.queues (%" PRIu32 ")", c->queue,
                       c->queues);
    if (strcmp(c->raw_backend, "auto") && strcmp(c->raw_backend, "xdp") && strcmp(c->raw_backend, "packet"))
        return put_err(err, errlen, "raw_socket.backend: \"%.*s\" is not one of auto, xdp, packet",
                       (int)sizeof(c->raw_backend), c->raw_backend);
    if (c->tcp_rcvbuf < 4096 || c->tcp_rcvbuf > (1u << 30))
        return put_err(err, errlen, "inetstack_config.tcp_rcvbuf: %" PRIu64 " bytes is out of range [4K, 1G]",
                       c->tcp_rcvbuf);
    if (c->tcp_sndbuf < 4096 || c->tcp_sndbuf > (1u << 30))
        return put_err(err, errlen, "inetstack_config.tcp_sndbuf: %" PRIu64 " bytes is out of range [4K, 1G]",
                       c->tcp_sndbuf);
    if (c->tcp_syncookies > 2)
        return put_err(err, errlen, "inetstack_config.tcp_syncookies: %" PRIu32 " is not 0, 1 or 2", c->tcp_syncookies);
    if (c->tcp_rto_min_ns < 1000000 || c->tcp_rto_min_ns > 60000000000ull)
        return put_err(err, errlen, "inetstack_config.tcp_rto_min: out of range [1ms, 60s]");
    if (c->tcp_msl_ns > 3600000000000ull)
        return put_err(err, errlen, "inetstack_config.tcp_msl: more than an hour");
    if (c->tcp_retries2 < 1 || c->tcp_retries2 > 100 || c->tcp_orphan_retries < 1 || c->tcp_orphan_retries > 100)
        return put_err(err, errlen, "inetstack_config.tcp_retries2 and tcp_orphan_retries: out of range [1, 100]");
    if (c->tcp_fin_timeout_ns < 1000000000ull || c->tcp_fin_timeout_ns > 3600000000000ull)
        return put_err(err, errlen, "inetstack_config.tcp_fin_timeout: out of range [1s, 1h]");
    if (c->n_arp < 0 || c->n_arp > CONFIG_MAX_ARP)
        return put_err(err, errlen, "inetstack_config.arp_table: %d entries (at most %d)", c->n_arp, CONFIG_MAX_ARP);
    return 0;
}

void config_defaults(struct config *c)
{
    static const struct config defaults = {
        .libos = "catnap",
        .raw_backend = "auto",
        .dpdk_mbufs = 8192,
        .dpdk_rx_ring = 1024,
        .dpdk_tx_ring = 1024,
        .heap_size = 4ull << 30,
        .hugepages = CONFIG_HUGE_AUTO,
        .spin_us = 1000,
        .queues = 1,
        .queue = UINT32_MAX,
        .nodelay = true,
        .keepalive_time_ms = 7200000,
        .keepalive_interval_ms = 75000,
        .mtu = 1500,
        .mss = 1460,
        .arp_cache_ttl_ns = 15000000000ull,
        .arp_request_timeout_ns = 1000000000ull,
        .arp_request_retries = 5,
        .tcp_cc = CONFIG_CC_CUBIC,
        .tcp_delack_ns = 0,
        .tcp_msl_ns = 30000000000ull,
        .tcp_rcvbuf = 4u << 20,
        .tcp_sndbuf = 4u << 20,
        .tcp_sack = true,
        .tcp_tlp = true,
        .tcp_timestamps = true,
        .tcp_wscale = true,
        .tcp_rto_min_ns = 200000000ull,
        .tcp_syn_retries = 6,
        .tcp_syncookies = 1,
        .tcp_retries2 = 15,
        .tcp_orphan_retries = 8,
        .tcp_fin_timeout_ns = 60000000000ull,
    };
    if (c)
        *c = defaults;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    int rc = begin(c, __func__, err, errlen);
    if (rc)
        return rc;
    config_defaults(c);
    if (!path && (path = getenv("CONFIG_PATH")) && !*path)
        path = NULL; /* Empty counts as unset. */
    if (path) {
        char *text = NULL, origin[512];
        size_t len = 0;
        bool empty = false;
        rc = read_file(path, &text, &len, err, errlen);
        if (!rc) {
            snprintf(origin, sizeof(origin), "file %s", path);
            rc = parse_text(c, text, len, origin, &empty, err, errlen);
            free(text);
        }
        /* Legal, but a truncated or misplaced file looks the same. */
        if (!rc && empty)
            log_warn("config file %s holds no settings (it is empty or only comments): using the defaults", path);
    }
    if (!rc)
        rc = config_apply_env(c, err, errlen);
    if (!rc)
        rc = config_validate(c, err, errlen);
    /* A failed load owns nothing: the caller need not call config_free(). */
    if (rc)
        config_free(c);
    return rc;
}

uint64_t config_heap_reserve(const struct config *c)
{
    if (c->heap_reserve_set)
        return c->heap_reserve;
    uint64_t r = c->heap_size / 16;
    return r < (2u << 20) ? (2u << 20) : r;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->eal_argc && i < CONFIG_MAX_EAL; i++) {
        free(c->eal_argv[i]);
        c->eal_argv[i] = NULL;
    }
    c->eal_argc = 0;
}

/* ---- the configuration in effect, for DEMI_LOG=debug ---- */

/* Writes key @k's value in @c into @buf as a user would type it. */
static void key_format(const struct key *k, const struct config *c, char *buf, size_t len)
{
    const char *p = (const char *)c + k->off;
    switch (k->type) {
    case T_STR:
    case T_LIBOS:
        snprintf(buf, len, "%s", *p ? p : "(none)");
        return;
    case T_IPV4:
        if (!inet_ntop(AF_INET, p, buf, (socklen_t)len))
            snprintf(buf, len, "?");
        return;
    case T_MAC: {
        const uint8_t *m = (const uint8_t *)p;
        snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
        return;
    }
    case T_BOOL:
        snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false");
        return;
    case T_U32:
        snprintf(buf, len, "%" PRIu32, *(const uint32_t *)p);
        return;
    case T_U64:
    case T_SIZE:
        snprintf(buf, len, "%" PRIu64, *(const uint64_t *)p);
        return;
    case T_DURATION:
        snprintf(buf, len, "%" PRIu64 "ns", *(const uint64_t *)p);
        return;
    case T_STRLIST:
        snprintf(buf, len, "%d arguments", c->eal_argc);
        return;
    case T_ARPMAP:
        snprintf(buf, len, "%d entries", c->n_arp);
        return;
    case T_HUGE: {
        int h = *(const int *)p;
        snprintf(buf, len, "%s", h >= 0 && h < (int)ARRAY_SIZE(huge_names) ? huge_names[h] : "?");
        return;
    }
    case T_CC: {
        int cc = *(const int *)p;
        snprintf(buf, len, "%s", cc >= 0 && cc < (int)ARRAY_SIZE(cc_names) ? cc_names[cc] : "?");
        return;
    }
    }
    snprintf(buf, len, "?");
}

/* Whether key @k has in @c the value it has in the defaults @d. */
static bool key_is_default(const struct key *k, const struct config *c, const struct config *d)
{
    if (k->flag >= 0)
        return !*(const bool *)((const char *)c + k->flag);
    const char *p = (const char *)c + k->off, *q = (const char *)d + k->off;
    switch (k->type) {
    case T_STR:
    case T_LIBOS:
        return strcmp(p, q) == 0;
    case T_STRLIST:
        return c->eal_argc == d->eal_argc;
    case T_ARPMAP:
        return c->n_arp == d->n_arp;
    default:
        return memcmp(p, q, k->size) == 0;
    }
}

void config_log(const struct config *c)
{
    if (log_level_g < LOGL_DEBUG)
        return;
    struct config d;
    config_defaults(&d);
    char val[64];
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        const struct key *k = &keys[i];
        if (!k->env)
            continue; /* file-only rows: their environment row says the same */
        bool dflt = key_is_default(k, c, &d);
        if (k->off == OFF(linger_secs) && !c->linger)
            snprintf(val, sizeof(val), "off");
        else if (k->off == OFF(heap_reserve))
            snprintf(val, sizeof(val), "%" PRIu64, config_heap_reserve(c));
        else
            key_format(k, c, val, sizeof(val));
        log_debug("config: %s = %s%s", k->env, val, dflt ? " (default)" : "");
    }
}
