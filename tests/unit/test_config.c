/*
 * Unit test for core/config: defaults, YAML files, environment overrides,
 * each value type's good and bad forms, list keys, cross-field checks, and
 * that every error message names its key and the value's origin. It must
 * never leave files or environment variables behind: temporary files live
 * under /tmp and are removed, and every variable set is unset again.
 * Exit 0 pass, 1 fail.
 */
#include "core/config.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
static char err[512];
static char last_path[64];

#define CHECK(cond) check_at((cond), #cond, __LINE__)

static bool check_at(bool ok, const char *what, int line)
{
    if (!ok) {
        failures++;
        fprintf(stderr, "FAIL line %d: %s\n      err: \"%s\"\n", line, what, err);
    }
    return ok;
}

static bool has(const char *s)
{
    return strstr(err, s) != NULL;
}

static const char *const env_names[] = {
    "LOCAL_IPV4_ADDR",
    "LOCAL_LINK_ADDR",
    "LINUX_INTERFACE_NAME",
    "EAL_INIT",
    "KEEPALIVE",
    "KEEPALIVE_TIME_MILLIS",
    "KEEPALIVE_INTERVAL",
    "LINGER",
    "NODELAY",
    "MTU",
    "MSS",
    "ENABLE_JUMBO_FRAMES",
    "TCP_CHECKSUM_OFFLOAD",
    "UDP_CHECKSUM_OFFLOAD",
    "ARP_CACHE_TTL",
    "ARP_REQUEST_TIMEOUT",
    "ARP_REQUEST_RETRIES",
    "ARP_TABLE",
    "LIBOS",
    "HEAP_SIZE",
    "HEAP_RESERVE",
    "HUGEPAGES",
    "SPIN_US",
    "RAW_SOCKET_BACKEND",
    "XDP_NATIVE",
    "TCP_CONGESTION_CONTROL",
    "TCP_DELAYED_ACK",
    "TCP_MSL",
    "TCP_RCVBUF",
    "TCP_SNDBUF",
    "TCP_SACK",
    "TCP_TIMESTAMPS",
    "TCP_WINDOW_SCALE",
    "TCP_RTO_MIN",
    "TCP_SYN_RETRIES",
    "TCP_RETRIES2",
    "TCP_ORPHAN_RETRIES",
    "TCP_FIN_TIMEOUT",
    "CONFIG_PATH",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
}

/* Writes @len bytes of @text to a new file under /tmp, named in last_path. */
static void write_tmp(const char *text, size_t len)
{
    strcpy(last_path, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(last_path);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        perror("test_config: temporary file");
        exit(1);
    }
    close(fd);
}

/* config_load() of @text through a temporary file. */
static int load_text(struct config *c, const char *text)
{
    write_tmp(text, strlen(text));
    int rc = config_load(c, last_path, err, sizeof(err));
    unlink(last_path);
    return rc;
}

/* config_parse_yaml() of @text over the defaults. */
static int parse(struct config *c, const char *text)
{
    config_defaults(c);
    return config_parse_yaml(c, text, strlen(text), err, sizeof(err));
}

static bool ip_is(struct in_addr a, const char *s)
{
    struct in_addr b;
    return inet_pton(AF_INET, s, &b) == 1 && a.s_addr == b.s_addr;
}

static bool mac_is(const uint8_t *m, uint8_t last)
{
    const uint8_t want[6] = {0x02, 0, 0, 0, 0, last};
    return memcmp(m, want, 6) == 0;
}

static void test_defaults(void)
{
    struct config c;
    config_defaults(&c);
    CHECK(strcmp(c.libos, "catnap") == 0);
    CHECK(c.heap_size == 4ull << 30);
    CHECK(c.hugepages == CONFIG_HUGE_AUTO);
    CHECK(c.spin_us == 1000);
    CHECK(c.nodelay && !c.keepalive && !c.linger && c.linger_secs == 0);
    CHECK(c.keepalive_time_ms == 7200000 && c.keepalive_interval_ms == 75000);
    CHECK(c.mtu == 1500 && c.mss == 1460 && !c.mss_set);
    CHECK(!c.enable_jumbo_frames && !c.tcp_checksum_offload && !c.udp_checksum_offload);
    CHECK(c.arp_cache_ttl_ns == 15000000000ull && c.arp_request_timeout_ns == 1000000000ull);
    CHECK(c.arp_request_retries == 5);
    CHECK(!c.has_local_ipv4_addr && !c.has_local_link_addr);
    CHECK(c.linux_interface_name[0] == '\0' && c.eal_argc == 0 && c.n_arp == 0);
    CHECK(config_validate(&c, err, sizeof(err)) == 0);
    config_free(&c);
    config_free(&c);

    /* No path and no CONFIG_PATH (or an empty one): just the defaults. */
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0 && c.mtu == 1500 && err[0] == '\0');
    setenv("CONFIG_PATH", "", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0 && strcmp(c.libos, "catnap") == 0);
    clear_env();

    /* An empty file and a file of comments are empty configurations. */
    CHECK(load_text(&c, "") == 0 && c.mtu == 1500);
    CHECK(load_text(&c, "# nothing here\n---\n") == 0 && c.mss == 1460);
}

static const char full_yaml[] = "client:\n"
                                "  connect_to: 10.0.0.2:12345\n"
                                "  nested: {deep: [1, 2, {x: y}]}\n"
                                "demikernel:\n"
                                "  local_ipv4_addr: 10.0.0.1\n"
                                "  local_link_addr: \"02:00:00:00:00:01\"\n"
                                "raw_socket:\n"
                                "  linux_interface_name: veth0\n"
                                "dpdk:\n"
                                "  eal_init: [\"--no-pci\", \"--vdev=net_memif0\"]\n"
                                "tcp_socket_options:\n"
                                "  keepalive: {enabled: true, time_millis: 1000, interval: 500}\n"
                                "  linger:\n"
                                "    enabled: true\n"
                                "    time_seconds: 7\n"
                                "  nodelay: false\n"
                                "inetstack_config:\n"
                                "  mtu: 9000\n"
                                "  mss: 8000\n"
                                "  enable_jumbo_frames: yes\n"
                                "  tcp_checksum_offload: on\n"
                                "  udp_checksum_offload: 1\n"
                                "  arp_cache_ttl: 30s\n"
                                "  arp_request_timeout: 0.5\n"
                                "  arp_request_retries: 3\n"
                                "  arp_table:\n"
                                "    \"02:00:00:00:00:02\": 10.0.0.2\n"
                                "    \"02:00:00:00:00:03\": \"10.0.0.3\"\n"
                                "libdemi:\n"
                                "  libos: catnip\n"
                                "  heap_size: 1G\n"
                                "  hugepages: off\n"
                                "  spin_us: 0\n"
                                "server:\n"
                                "  bind: 0.0.0.0\n";

static void check_full(const struct config *c)
{
    CHECK(c->has_local_ipv4_addr && ip_is(c->local_ipv4_addr, "10.0.0.1"));
    CHECK(c->has_local_link_addr && mac_is(c->local_link_addr, 1));
    CHECK(strcmp(c->linux_interface_name, "veth0") == 0);
    CHECK(c->eal_argc == 2 && strcmp(c->eal_argv[0], "--no-pci") == 0 &&
          strcmp(c->eal_argv[1], "--vdev=net_memif0") == 0);
    CHECK(c->keepalive && c->keepalive_time_ms == 1000 && c->keepalive_interval_ms == 500);
    CHECK(c->linger && c->linger_secs == 7 && !c->nodelay);
    CHECK(c->mtu == 9000 && c->mss == 8000 && c->mss_set && c->enable_jumbo_frames);
    CHECK(c->tcp_checksum_offload && c->udp_checksum_offload);
    CHECK(c->arp_cache_ttl_ns == 30000000000ull && c->arp_request_timeout_ns == 500000000ull);
    CHECK(c->arp_request_retries == 3);
    CHECK(c->n_arp == 2 && mac_is(c->arp_table[0].mac, 2) && ip_is(c->arp_table[0].ip, "10.0.0.2") &&
          mac_is(c->arp_table[1].mac, 3) && ip_is(c->arp_table[1].ip, "10.0.0.3"));
    CHECK(strcmp(c->libos, "catnip") == 0 && c->heap_size == 1ull << 30);
    CHECK(c->hugepages == CONFIG_HUGE_OFF && c->spin_us == 0);
}

static void test_full_file(void)
{
    struct config c;
    CHECK(load_text(&c, full_yaml) == 0);
    check_full(&c);
    config_free(&c);
    CHECK(c.eal_argc == 0);

    /* The same through CONFIG_PATH, and through config_parse_yaml(). */
    write_tmp(full_yaml, strlen(full_yaml));
    setenv("CONFIG_PATH", last_path, 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0);
    check_full(&c);
    config_free(&c);
    clear_env();
    unlink(last_path);
    CHECK(parse(&c, full_yaml) == 0 && config_validate(&c, err, sizeof(err)) == 0);
    check_full(&c);
    config_free(&c);
}

static void test_env_over_file(void)
{
    static const char *const env[][2] = {
        {"LOCAL_IPV4_ADDR", "192.168.1.5"},
        {"LOCAL_LINK_ADDR", "02:00:00:00:00:AB"},
        {"LINUX_INTERFACE_NAME", "eth1"},
        {"EAL_INIT", " -l 0  --no-huge\t"},
        {"KEEPALIVE", "no"},
        {"KEEPALIVE_TIME_MILLIS", "60000"},
        {"KEEPALIVE_INTERVAL", "1000"},
        {"LINGER", "9"},
        {"NODELAY", "TRUE"},
        {"MTU", "1400"},
        {"MSS", "1300"},
        {"ENABLE_JUMBO_FRAMES", "false"},
        {"TCP_CHECKSUM_OFFLOAD", "0"},
        {"UDP_CHECKSUM_OFFLOAD", "Off"},
        {"ARP_CACHE_TTL", "250ms"},
        {"ARP_REQUEST_TIMEOUT", "20us"},
        {"ARP_REQUEST_RETRIES", "9"},
        {"ARP_TABLE", "02:00:00:00:00:09=10.0.0.9, 02:00:00:00:00:0a = 10.0.0.10"},
        {"LIBOS", "catpowder"},
        {"HEAP_SIZE", "64MiB"},
        {"HUGEPAGES", "on"},
        {"SPIN_US", "50"},
    };
    struct config c;
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
        setenv(env[i][0], env[i][1], 1);
    /* The file turns linger off: LINGER in the environment turns it back on. */
    char yaml[sizeof(full_yaml) + 64];
    snprintf(yaml, sizeof(yaml), "%s", full_yaml);
    memcpy(strstr(yaml, "enabled: true\n    time"), "enabled: no  ", 13);
    CHECK(load_text(&c, yaml) == 0);
    CHECK(ip_is(c.local_ipv4_addr, "192.168.1.5") && mac_is(c.local_link_addr, 0xab));
    CHECK(strcmp(c.linux_interface_name, "eth1") == 0);
    CHECK(c.eal_argc == 3 && strcmp(c.eal_argv[0], "-l") == 0 && strcmp(c.eal_argv[1], "0") == 0 &&
          strcmp(c.eal_argv[2], "--no-huge") == 0);
    CHECK(!c.keepalive && c.keepalive_time_ms == 60000 && c.keepalive_interval_ms == 1000);
    CHECK(c.linger && c.linger_secs == 9 && c.nodelay);
    CHECK(c.mtu == 1400 && c.mss == 1300 && !c.enable_jumbo_frames);
    CHECK(!c.tcp_checksum_offload && !c.udp_checksum_offload);
    CHECK(c.arp_cache_ttl_ns == 250000000ull && c.arp_request_timeout_ns == 20000ull && c.arp_request_retries == 9);
    CHECK(c.n_arp == 2 && mac_is(c.arp_table[0].mac, 9) && ip_is(c.arp_table[0].ip, "10.0.0.9") &&
          mac_is(c.arp_table[1].mac, 10) && ip_is(c.arp_table[1].ip, "10.0.0.10"));
    CHECK(strcmp(c.libos, "catpowder") == 0 && c.heap_size == 64ull << 20);
    CHECK(c.hugepages == CONFIG_HUGE_ON && c.spin_us == 50);
    config_free(&c);

    /* An empty variable counts as unset: the file's values stay. */
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
        setenv(env[i][0], "", 1);
    CHECK(load_text(&c, full_yaml) == 0);
    check_full(&c);
    config_free(&c);
    clear_env();
}

static void test_parsers(void)
{
    static const char *const ipv4_good[] = {"0.0.0.0", "255.255.255.255", "10.0.0.1", "192.168.100.200"};
    static const char *const ipv4_bad[] = {"",           "1.2.3",     "1.2.3.4.5", "256.1.1.1",  " 1.2.3.4",
                                           "1.2.3.4 ",   "1.2.3.4x",  "a.b.c.d",   "1..2.3",     "01.2.3.4",
                                           "1.2.3.-4",   "1.2.3.4.",  ".1.2.3.4",  "1234.1.1.1", "1.2.3.+4",
                                           "1.2.3.1000", "0x1.2.3.4", "1.2.3.4\n"};
    static const char *const mac_good[] = {"02:00:00:00:00:01", "AA:bb:Cc:dD:ee:FF", "ff:ff:ff:ff:ff:ff"};
    static const char *const mac_bad[] = {"",
                                          "02:00:00:00:00",
                                          "02:00:00:00:00:01:02",
                                          "2:0:0:0:0:1",
                                          "02-00-00-00-00-01",
                                          "gg:00:00:00:00:00",
                                          "02:00:00:00:00:011",
                                          " 02:00:00:00:00:01",
                                          "02:00:00:00:00:0",
                                          "02:00:00:00:00:01:",
                                          "0200.0000.0001",
                                          "\x10\x11:00:00:00:00:00",
                                          "02:00:00:00:00:0g"};
    static const char *const bool_true[] = {"true", "yes", "on", "1", "TRUE", "Yes", "oN"};
    static const char *const bool_false[] = {"false", "no", "off", "0", "FALSE", "No", "OFF"};
    static const char *const bool_bad[] = {"", "2", "tru", "yes ", "enabled", "y", "00"};
    static const struct {
        const char *s;
        uint64_t v;
    } u64_good[] = {{"0", 0}, {"42", 42}, {"007", 7}, {"18446744073709551615", UINT64_MAX}},
      size_good[] = {{"0", 0},
                     {"4096", 4096},
                     {"4K", 4096},
                     {"4k", 4096},
                     {"16M", 16 << 20},
                     {"16MiB", 16 << 20},
                     {"4G", 4ull << 30},
                     {"4GiB", 4ull << 30},
                     {"2gib", 2ull << 30},
                     {"1 G", 1ull << 30},
                     {"17179869183G", 17179869183ull << 30}},
      dur_good[] = {{"15", 15000000000ull},   {"0.5", 500000000}, {"1ms", 1000000},
                    {"250us", 250000},        {"7ns", 7},         {"2s", 2000000000},
                    {"1.5ms", 1500000},       {"0.000000001", 1}, {"0.0000000009", 0},
                    {"15 s", 15000000000ull}, {"0", 0},           {"18446744073709551615ns", UINT64_MAX}};
    static const char *const u64_bad[] = {
        "", "-1", "+1", "1.0", "18446744073709551616", "99999999999999999999999", " 1", "1 ", "0x10", "1e3", "1_000"};
    static const char *const size_bad[] = {"",     "G",   "4KB",          "4T",    "4 ",  "-4K",
                                           "1.5G", "4Gi", "17179869184G", "4GiBx", "4 G "};
    static const char *const dur_bad[] = {"",      "s",    ".5",    "5.",  "-1",           "1h",
                                          "1m",    "1 ",   "1.2.3", "1e3", "18446744074s", "18446744073709551616ns",
                                          "1.5.s", "1 ms "};
    struct in_addr a;
    uint8_t mac[6];
    bool b;
    uint64_t v;

    for (size_t i = 0; i < sizeof(ipv4_good) / sizeof(ipv4_good[0]); i++)
        CHECK(config_parse_ipv4(ipv4_good[i], &a) == 0 && ip_is(a, ipv4_good[i]));
    for (size_t i = 0; i < sizeof(ipv4_bad) / sizeof(ipv4_bad[0]); i++)
        if (!CHECK(config_parse_ipv4(ipv4_bad[i], &a) == EINVAL))
            fprintf(stderr, "      ipv4 accepted \"%s\"\n", ipv4_bad[i]);
    for (size_t i = 0; i < sizeof(mac_good) / sizeof(mac_good[0]); i++)
        CHECK(config_parse_mac(mac_good[i], mac) == 0);
    CHECK(config_parse_mac("AA:bb:Cc:dD:ee:FF", mac) == 0 &&
          memcmp(mac, (const uint8_t[6]){0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, 6) == 0);
    for (size_t i = 0; i < sizeof(mac_bad) / sizeof(mac_bad[0]); i++)
        if (!CHECK(config_parse_mac(mac_bad[i], mac) == EINVAL))
            fprintf(stderr, "      mac accepted \"%s\"\n", mac_bad[i]);
    for (size_t i = 0; i < sizeof(bool_true) / sizeof(bool_true[0]); i++) {
        b = false;
        CHECK(config_parse_bool(bool_true[i], &b) == 0 && b);
        CHECK(config_parse_bool(bool_false[i], &b) == 0 && !b);
    }
    for (size_t i = 0; i < sizeof(bool_bad) / sizeof(bool_bad[0]); i++)
        CHECK(config_parse_bool(bool_bad[i], &b) == EINVAL);
    for (size_t i = 0; i < sizeof(u64_good) / sizeof(u64_good[0]); i++)
        CHECK(config_parse_u64(u64_good[i].s, &v) == 0 && v == u64_good[i].v);
    for (size_t i = 0; i < sizeof(u64_bad) / sizeof(u64_bad[0]); i++)
        if (!CHECK(config_parse_u64(u64_bad[i], &v) == EINVAL))
            fprintf(stderr, "      u64 accepted \"%s\"\n", u64_bad[i]);
    for (size_t i = 0; i < sizeof(size_good) / sizeof(size_good[0]); i++)
        if (!CHECK(config_parse_size(size_good[i].s, &v) == 0 && v == size_good[i].v))
            fprintf(stderr, "      size \"%s\"\n", size_good[i].s);
    for (size_t i = 0; i < sizeof(size_bad) / sizeof(size_bad[0]); i++)
        if (!CHECK(config_parse_size(size_bad[i], &v) == EINVAL))
            fprintf(stderr, "      size accepted \"%s\"\n", size_bad[i]);
    for (size_t i = 0; i < sizeof(dur_good) / sizeof(dur_good[0]); i++)
        if (!CHECK(config_parse_duration(dur_good[i].s, &v) == 0 && v == dur_good[i].v))
            fprintf(stderr, "      duration \"%s\"\n", dur_good[i].s);
    for (size_t i = 0; i < sizeof(dur_bad) / sizeof(dur_bad[0]); i++)
        if (!CHECK(config_parse_duration(dur_bad[i], &v) == EINVAL))
            fprintf(stderr, "      duration accepted \"%s\"\n", dur_bad[i]);

    /* NULL in, NULL out: EINVAL, no crash. */
    CHECK(config_parse_ipv4(NULL, &a) == EINVAL && config_parse_ipv4("1.2.3.4", NULL) == EINVAL);
    CHECK(config_parse_mac(NULL, mac) == EINVAL && config_parse_mac("02:00:00:00:00:01", NULL) == EINVAL);
    CHECK(config_parse_bool(NULL, &b) == EINVAL && config_parse_bool("yes", NULL) == EINVAL);
    CHECK(config_parse_u64(NULL, &v) == EINVAL && config_parse_u64("1", NULL) == EINVAL);
    CHECK(config_parse_size(NULL, &v) == EINVAL && config_parse_size("1", NULL) == EINVAL);
    CHECK(config_parse_duration(NULL, &v) == EINVAL && config_parse_duration("1", NULL) == EINVAL);
}

/* A bad value in a file: EINVAL, and one line naming the key, the problem and the file. */
static void test_file_errors(void)
{
    static const struct {
        const char *yaml, *key, *problem;
    } cases[] = {
        {"demikernel:\n  local_ipv4_addr: 1.2.3\n", "demikernel.local_ipv4_addr: \"1.2.3\" is not an IPv4 address", ""},
        {"demikernel:\n  local_ipv4_addr: 1.2.3.4.5\n", "demikernel.local_ipv4_addr", "IPv4"},
        {"demikernel:\n  local_link_addr: \"02:00:00:00:00\"\n", "demikernel.local_link_addr", "not a MAC address"},
        {"raw_socket:\n  linux_interface_name: abcdefghijklmnop\n", "raw_socket.linux_interface_name",
         "too long (at most 15"},
        {"dpdk:\n  eal_init: --no-pci\n", "dpdk.eal_init", "list"},
        {"dpdk:\n  eal_init: [a, [b]]\n", "dpdk.eal_init", "entry 2"},
        {"tcp_socket_options:\n  keepalive: {enabled: maybe}\n", "tcp_socket_options.keepalive.enabled", "boolean"},
        {"tcp_socket_options:\n  keepalive: {time_millis: -5}\n", "tcp_socket_options.keepalive.time_millis",
         "not an integer"},
        {"tcp_socket_options:\n  keepalive: {interval: 4294967296}\n", "tcp_socket_options.keepalive.interval",
         "out of range"},
        {"tcp_socket_options:\n  keepalive: true\n", "tcp_socket_options.keepalive", "mapping"},
        {"tcp_socket_options:\n  linger: {enabled: true, time_seconds: x}\n", "tcp_socket_options.linger.time_seconds",
         "integer"},
        {"tcp_socket_options:\n  linger: {enabled: sometimes}\n", "tcp_socket_options.linger.enabled", "boolean"},
        {"tcp_socket_options:\n  nodelay: [true]\n", "tcp_socket_options.nodelay", "single value"},
        {"inetstack_config:\n  mss: 1.5\n", "inetstack_config.mss", "integer"},
        {"inetstack_config:\n  enable_jumbo_frames: 2\n", "inetstack_config.enable_jumbo_frames", "boolean"},
        {"inetstack_config:\n  tcp_checksum_offload: enabled\n", "inetstack_config.tcp_checksum_offload", "boolean"},
        {"inetstack_config:\n  udp_checksum_offload: \"\"\n", "inetstack_config.udp_checksum_offload", "boolean"},
        {"inetstack_config:\n  arp_cache_ttl: 5 minutes\n", "inetstack_config.arp_cache_ttl", "not a duration"},
        {"inetstack_config:\n  arp_request_timeout: -1\n", "inetstack_config.arp_request_timeout", "duration"},
        {"inetstack_config:\n  arp_request_retries: many\n", "inetstack_config.arp_request_retries", "integer"},
        {"inetstack_config:\n  arp_table: {\"zz:00:00:00:00:01\": 10.0.0.2}\n", "inetstack_config.arp_table",
         "\"zz:00:00:00:00:01\" is not a MAC address"},
        {"inetstack_config:\n  arp_table: {\"02:00:00:00:00:01\": 10.0.0}\n", "inetstack_config.arp_table",
         "\"10.0.0\" (for 02:00:00:00:00:01) is not an IPv4 address"},
        {"inetstack_config:\n  arp_table: [\"02:00:00:00:00:01\"]\n", "inetstack_config.arp_table", "mapping"},
        {"inetstack_config:\n  arp_table: {\"02:00:00:00:00:01\": [10.0.0.1]}\n", "inetstack_config.arp_table",
         "entry 1"},
        {"inetstack_config:\n  arp_table: {\"02:00:00:00:00:01\": 10.0.0.1, \"02:00:00:00:00:02\": 10.0.0.1}\n",
         "inetstack_config.arp_table", "listed twice"},
        {"inetstack_config:\n  mtu: \"15\\0\"\n", "inetstack_config.mtu", "NUL"},
        {"libdemi:\n  libos: catfoo\n", "libdemi.libos: \"catfoo\" is an unknown libOS",
         "(known: catnap, catnip, catpowder, catmint)"},
        {"libdemi:\n  heap_size: 4T\n", "libdemi.heap_size", "not a size"},
        {"libdemi:\n  heap_size: 99999999999G\n", "libdemi.heap_size", "out of range"},
        {"libdemi:\n  hugepages: maybe\n", "libdemi.hugepages", "auto, on, off"},
        {"libdemi:\n  spin_us: 1e3\n", "libdemi.spin_us", "integer"},
        {"libdemi: [1, 2]\n", "libdemi", "mapping"},
        {"demikernel: 5\n", "demikernel", "mapping"},
        {"demikernel:\n  ? [a]\n  : b\n", "demikernel", "key"},
    };
    struct config c;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = load_text(&c, cases[i].yaml);
        char origin[96];
        snprintf(origin, sizeof(origin), "(file %s)", last_path);
        if (!CHECK(rc == EINVAL && has(cases[i].key) && has(cases[i].problem) && has(origin) && !strchr(err, '\n')))
            fprintf(stderr, "      case %zu: %s", i, cases[i].yaml);
        CHECK(c.eal_argc == 0);
        /* The same text without a file says so. */
        rc = parse(&c, cases[i].yaml);
        CHECK(rc == EINVAL && has(cases[i].key) && has("(YAML text)"));
        config_free(&c);
    }

    /* The exact shape of one message. */
    char want[160];
    CHECK(load_text(&c, "inetstack_config:\n  mtu: abc\n") == EINVAL);
    snprintf(want, sizeof(want), "inetstack_config.mtu: \"abc\" is not an integer (file %s)", last_path);
    CHECK(strcmp(err, want) == 0);
}

/* A bad value in the environment: EINVAL, "VAR=value: problem (environment)". */
static void test_env_errors(void)
{
    char many[400] = "";
    for (int i = 0; i < CONFIG_MAX_EAL + 1; i++)
        strcat(many, "-x ");
    static const struct {
        const char *var, *value, *problem;
    } cases[] = {
        {"LOCAL_IPV4_ADDR", "1.2.3", "not an IPv4 address"},
        {"LOCAL_LINK_ADDR", "02:00", "not a MAC address"},
        {"LINUX_INTERFACE_NAME", "abcdefghijklmnop", "too long"},
        {"KEEPALIVE", "maybe", "boolean"},
        {"KEEPALIVE_TIME_MILLIS", "x", "not an integer"},
        {"KEEPALIVE_INTERVAL", "-1", "not an integer"},
        {"LINGER", "1.5", "not an integer"},
        {"NODELAY", "2", "boolean"},
        {"MSS", "99999999999", "out of range (at most 4294967295)"},
        {"ENABLE_JUMBO_FRAMES", "jumbo", "boolean"},
        {"TCP_CHECKSUM_OFFLOAD", "x", "boolean"},
        {"UDP_CHECKSUM_OFFLOAD", "x", "boolean"},
        {"ARP_CACHE_TTL", "1h", "not a duration"},
        {"ARP_REQUEST_TIMEOUT", "ms", "duration"},
        {"ARP_REQUEST_RETRIES", "-3", "integer"},
        {"ARP_TABLE", "02:00:00:00:00:01", "not mac=ip"},
        {"ARP_TABLE", "02:00:00:00:00:01=10.0.0.300", "\"10.0.0.300\" (for 02:00:00:00:00:01) is not an IPv4"},
        {"ARP_TABLE", "02:00:00:00:01=10.0.0.3", "not a MAC address"},
        {"ARP_TABLE", "02:00:00:00:00:01=10.0.0.1 x", "entry \"02:00:00:00:00:01=10.0.0.1 x\" is not mac=ip"},
        {"ARP_TABLE", "02:00:00:00:00:01:02:03:04:05:06:07:08=10.0.0.1", "is not mac=ip"},
        {"ARP_TABLE", "02:00:00:00:00:01=10.0.0.1=10.0.0.2",
         "\"10.0.0.1=10.0.0.2\" (for 02:00:00:00:00:01) is not an IPv4"},
        {"HEAP_SIZE", "lots", "not a size"},
        {"HUGEPAGES", "always", "auto, on, off"},
        {"SPIN_US", "4294967296", "out of range"},
    };
    struct config c;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char where[128];
        snprintf(where, sizeof(where), "%s=%s: ", cases[i].var, cases[i].value);
        setenv(cases[i].var, cases[i].value, 1);
        config_defaults(&c);
        int rc = config_apply_env(&c, err, sizeof(err));
        if (!CHECK(rc == EINVAL && has(where) && has(cases[i].problem) && has("(environment)")))
            fprintf(stderr, "      case %s=%s\n", cases[i].var, cases[i].value);
        CHECK(config_load(&c, NULL, err, sizeof(err)) == EINVAL && has(where));
        clear_env();
    }

    /* The exact shape of two messages. */
    setenv("MTU", "abc", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == EINVAL &&
          strcmp(err, "MTU=abc: not an integer (environment)") == 0);
    clear_env();
    setenv("LIBOS", "catfoo", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == EINVAL &&
          strcmp(err, "LIBOS=catfoo: an unknown libOS (known: catnap, catnip, catpowder, catmint) (environment)") == 0);
    clear_env();
    setenv("EAL_INIT", many, 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == EINVAL && has("EAL_INIT=") && has("more than 64 entries"));
    clear_env();
    /* Instances sharing a device: 1..16, and a queue below their number. */
    setenv("QUEUES", "17", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == EINVAL && has("libdemi.queues: 17 is out of range [1, 16]"));
    setenv("QUEUES", "0", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == EINVAL && has("libdemi.queues: 0 is out of range"));
    setenv("QUEUES", "2", 1);
    setenv("QUEUE", "2", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == EINVAL && has("libdemi.queue: 2 is not below libdemi.queues (2)"));
    setenv("QUEUE", "1", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0 && c.queues == 2 && c.queue == 1);
    unsetenv("QUEUE");
    unsetenv("QUEUES");
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0 && c.queues == 1 && c.queue == UINT32_MAX);
    clear_env();
}

static void test_syntax(void)
{
    struct config c;
    CHECK(load_text(&c, "libdemi:\n  libos: [catnap\n") == EINVAL && has("YAML syntax error at line") &&
          has(last_path));
    CHECK(load_text(&c, "inetstack_config:\n  mtu: 1500\n mss: 1460\n") == EINVAL && has("line 3"));
    CHECK(load_text(&c, "libdemi:\n\tlibos: catnap\n") == EINVAL && has("line 2"));
    CHECK(load_text(&c, "a: \"unterminated\n") == EINVAL && has("line"));
    CHECK(load_text(&c, "libdemi: {libos: catnap\n") == EINVAL && has("line"));
    CHECK(load_text(&c, "a: \xc3\x28\n") == EINVAL && has("YAML"));
    CHECK(load_text(&c, "[1, 2]\n") == EINVAL && has("top level"));
    CHECK(load_text(&c, "just a string\n") == EINVAL && has("top level"));
}

static void test_mtu_mss(void)
{
    struct config c;
    /* MTU alone: the MSS follows it. */
    setenv("MTU", "1000", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0 && c.mtu == 1000 && c.mss == 960);
    CHECK(load_text(&c, "inetstack_config: {mss: 900}\n") == 0 && c.mtu == 1000 && c.mss == 900);
    clear_env();
    CHECK(load_text(&c, "inetstack_config: {mtu: 1200}\n") == 0 && c.mss == 1160);
    CHECK(load_text(&c, "inetstack_config: {mss: 1000, mtu: 1200}\n") == 0 && c.mss == 1000);
    CHECK(load_text(&c, "inetstack_config: {mtu: 9216, enable_jumbo_frames: true}\n") == 0 && c.mss == 9176);
    setenv("MSS", "1000", 1);
    CHECK(load_text(&c, "inetstack_config: {mtu: 1200}\n") == 0 && c.mss == 1000);
    clear_env();

    /* Out of range, each naming its key. */
    CHECK(load_text(&c, "inetstack_config: {mtu: 9000}\n") == EINVAL && has("inetstack_config.mtu") &&
          has("enable_jumbo_frames"));
    CHECK(load_text(&c, "inetstack_config: {mtu: 9217, enable_jumbo_frames: true}\n") == EINVAL &&
          has("inetstack_config.mtu"));
    CHECK(load_text(&c, "inetstack_config: {mtu: 67}\n") == EINVAL && has("inetstack_config.mtu"));
    CHECK(load_text(&c, "inetstack_config: {mtu: 68, mss: 64}\n") == EINVAL && has("inetstack_config.mss"));
    CHECK(load_text(&c, "inetstack_config: {mtu: 100}\n") == EINVAL && has("inetstack_config.mss"));
    CHECK(load_text(&c, "inetstack_config: {mtu: 104}\n") == 0 && c.mss == 64);
    CHECK(load_text(&c, "inetstack_config: {mss: 63}\n") == EINVAL && has("inetstack_config.mss"));
    CHECK(load_text(&c, "inetstack_config: {mss: 1461}\n") == EINVAL && has("inetstack_config.mss") && has("1460"));
    CHECK(load_text(&c, "inetstack_config: {mss: 1460}\n") == 0);
    setenv("MTU", "1400", 1);
    setenv("MSS", "1460", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == EINVAL && has("inetstack_config.mss"));
    clear_env();

    /* Other cross-field checks. */
    CHECK(load_text(&c, "libdemi: {heap_size: 15M}\n") == EINVAL && has("libdemi.heap_size"));
    CHECK(load_text(&c, "libdemi: {heap_size: 16M}\n") == 0);
    CHECK(config_heap_reserve(&c) == 2u << 20); /* 1/16, at least one chunk */
    CHECK(load_text(&c, "libdemi: {heap_size: 1G}\n") == 0 && config_heap_reserve(&c) == 64u << 20);
    CHECK(load_text(&c, "libdemi: {heap_size: 1G, heap_reserve: 0}\n") == 0 && config_heap_reserve(&c) == 0);
    CHECK(load_text(&c, "libdemi: {heap_size: 64M, heap_reserve: 32M}\n") == 0 && config_heap_reserve(&c) == 32u << 20);
    CHECK(load_text(&c, "libdemi: {heap_size: 64M, heap_reserve: 33M}\n") == EINVAL && has("libdemi.heap_reserve"));
    config_defaults(&c);
    strcpy(c.libos, "catfoo");
    CHECK(config_validate(&c, err, sizeof(err)) == EINVAL && has("libdemi.libos") && has("catmint"));
    config_defaults(&c);
    c.hugepages = 7;
    CHECK(config_validate(&c, err, sizeof(err)) == EINVAL && has("libdemi.hugepages"));
    config_defaults(&c);
    memset(c.linux_interface_name, 'x', sizeof(c.linux_interface_name));
    CHECK(config_validate(&c, err, sizeof(err)) == EINVAL && has("raw_socket.linux_interface_name"));
    CHECK(load_text(&c, "raw_socket: {linux_interface_name: abcdefghijklmno}\n") == 0 &&
          strlen(c.linux_interface_name) == 15);
}

static void test_lists(void)
{
    struct config c;
    char yaml[4096], env[2048];

    /* eal_init from YAML, then replaced by EAL_INIT (the file's strings are freed). */
    CHECK(load_text(&c, "dpdk:\n  eal_init:\n    - --no-pci\n    - \"-l 0\"\n") == 0 && c.eal_argc == 2 &&
          strcmp(c.eal_argv[1], "-l 0") == 0);
    config_free(&c);
    setenv("EAL_INIT", "--vdev=net_tap0 --no-huge", 1);
    CHECK(load_text(&c, "dpdk:\n  eal_init: [--no-pci, -l, \"0\"]\n") == 0 && c.eal_argc == 2 &&
          strcmp(c.eal_argv[0], "--vdev=net_tap0") == 0 && strcmp(c.eal_argv[1], "--no-huge") == 0);
    config_free(&c);
    /* A bad EAL_INIT leaves the list as it was. */
    CHECK(parse(&c, "dpdk:\n  eal_init: [a, b]\n") == 0 && c.eal_argc == 2);
    strcpy(env, "");
    for (int i = 0; i < CONFIG_MAX_EAL + 1; i++)
        strcat(env, "-x ");
    setenv("EAL_INIT", env, 1);
    CHECK(config_apply_env(&c, err, sizeof(err)) == EINVAL && c.eal_argc == 2 && strcmp(c.eal_argv[1], "b") == 0);
    config_free(&c);
    clear_env();
    /* An empty list from YAML replaces, a blank EAL_INIT too; a null value keeps. */
    CHECK(parse(&c, "dpdk:\n  eal_init: [a]\n") == 0 && c.eal_argc == 1);
    CHECK(config_parse_yaml(&c, "dpdk: {eal_init: ~}", 19, err, sizeof(err)) == 0 && c.eal_argc == 1);
    CHECK(config_parse_yaml(&c, "dpdk: {eal_init: []}", 20, err, sizeof(err)) == 0 && c.eal_argc == 0);
    config_free(&c);
    /* The limit: 64 entries fit, 65 do not; a failed load frees what it parsed. */
    strcpy(yaml, "dpdk:\n  eal_init: [");
    for (int i = 0; i < CONFIG_MAX_EAL; i++)
        strcat(yaml, i ? ", x" : "x");
    CHECK(load_text(&c, strcat(strcpy(env, yaml), "]\n")) == 0 && c.eal_argc == CONFIG_MAX_EAL);
    config_free(&c);
    CHECK(load_text(&c, strcat(yaml, ", y]\n")) == EINVAL && has("dpdk.eal_init") && has("more than 64"));
    CHECK(load_text(&c, "dpdk: {eal_init: [a, b]}\ninetstack_config: {mtu: 1}\n") == EINVAL && c.eal_argc == 0);

    /* arp_table from YAML, from ARP_TABLE, and ARP_TABLE over the file. */
    CHECK(parse(&c, "inetstack_config:\n  arp_table:\n    \"02:00:00:00:00:05\": 10.1.2.3\n") == 0 && c.n_arp == 1 &&
          mac_is(c.arp_table[0].mac, 5) && ip_is(c.arp_table[0].ip, "10.1.2.3"));
    setenv("ARP_TABLE", "02:00:00:00:00:07=10.0.0.7,02:00:00:00:00:08=10.0.0.8,", 1);
    CHECK(config_apply_env(&c, err, sizeof(err)) == 0 && c.n_arp == 2 && mac_is(c.arp_table[1].mac, 8) &&
          ip_is(c.arp_table[1].ip, "10.0.0.8"));
    /* A bad ARP_TABLE leaves the table as it was. */
    setenv("ARP_TABLE", "02:00:00:00:00:07=10.0.0.7,junk", 1);
    CHECK(config_apply_env(&c, err, sizeof(err)) == EINVAL && c.n_arp == 2 && has("ARP_TABLE=") && has("junk"));
    setenv("ARP_TABLE", " , ", 1);
    CHECK(config_apply_env(&c, err, sizeof(err)) == 0 && c.n_arp == 0);
    clear_env();
    /* The limit, from YAML and from the environment. */
    strcpy(yaml, "inetstack_config:\n  arp_table:\n");
    env[0] = '\0';
    for (int i = 0; i < CONFIG_MAX_ARP; i++) {
        char line[64];
        snprintf(line, sizeof(line), "    \"02:00:00:00:01:%02x\": 10.0.1.%d\n", i, i);
        strcat(yaml, line);
        snprintf(line, sizeof(line), "%s02:00:00:00:01:%02x=10.0.1.%d", i ? "," : "", i, i);
        strcat(env, line);
    }
    CHECK(load_text(&c, yaml) == 0 && c.n_arp == CONFIG_MAX_ARP && ip_is(c.arp_table[63].ip, "10.0.1.63"));
    setenv("ARP_TABLE", env, 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0 && c.n_arp == CONFIG_MAX_ARP);
    strcat(env, ",02:00:00:00:02:00=10.0.2.0");
    setenv("ARP_TABLE", env, 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == EINVAL && has("ARP_TABLE=") && has("more than 64"));
    clear_env();
    strcat(yaml, "    \"02:00:00:00:02:00\": 10.0.2.0\n");
    CHECK(load_text(&c, yaml) == EINVAL && has("inetstack_config.arp_table") && has("more than 64"));
}

/* Runs @fn with stderr going to a temporary file; returns what it wrote. */
static void capture_stderr(void (*fn)(void), char *out, size_t outlen)
{
    char path[] = "/tmp/test_config_err_XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    if (fd < 0 || saved < 0) {
        perror("test_config: capture");
        exit(1);
    }
    fflush(stderr);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

static int unknown_rc;

static void parse_unknown(void)
{
    struct config c;
    unknown_rc = parse(&c, "app:\n  frobnicate: 1\ninetstack_config:\n  frobnicate: 3\n  mtu: 1400\n"
                           "tcp_socket_options:\n  keepalive: {enabled: true, bogus: 1}\n");
    CHECK(c.mtu == 1400 && c.keepalive);
}

static void parse_known_only(void)
{
    struct config c;
    unknown_rc = parse(&c, "client:\n  frobnicate: 1\nserver: [1, 2]\nlibdemi: {libos: catmint}\n");
    CHECK(strcmp(c.libos, "catmint") == 0);
}

static void test_unknown(void)
{
    char out[1024];
    /* An unknown key in a known section warns with its path; unknown sections are silent. */
    capture_stderr(parse_unknown, out, sizeof(out));
    CHECK(unknown_rc == 0 && strstr(out, "inetstack_config.frobnicate") &&
          strstr(out, "tcp_socket_options.keepalive.bogus") && !strstr(out, "app"));
    capture_stderr(parse_known_only, out, sizeof(out));
    CHECK(unknown_rc == 0 && out[0] == '\0');
}

static void test_files(void)
{
    struct config c;
    const char *missing = "/tmp/test_config_no_such_dir/missing.yaml";
    CHECK(config_load(&c, missing, err, sizeof(err)) == ENOENT && has(missing));
    setenv("CONFIG_PATH", missing, 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == ENOENT && has(missing));
    clear_env();
    CHECK(config_load(&c, "/tmp", err, sizeof(err)) == EISDIR && has("/tmp"));
    if (geteuid() != 0) {
        write_tmp("libdemi: {}\n", 12);
        chmod(last_path, 0);
        CHECK(config_load(&c, last_path, err, sizeof(err)) == EACCES && has(last_path));
        unlink(last_path);
    }
    /* Past the size limit. */
    size_t big = (1u << 20) + 10;
    char *text = malloc(big);
    if (text) {
        memset(text, '#', big);
        text[big - 1] = '\n';
        write_tmp(text, big);
        CHECK(config_load(&c, last_path, err, sizeof(err)) == EFBIG && has(last_path));
        unlink(last_path);
        free(text);
    }
}

static void test_null_err(void)
{
    struct config c;
    char small[8];
    CHECK(config_load(&c, "/tmp/test_config_no_such_dir/x", NULL, 0) == ENOENT);
    CHECK(config_load(&c, "/tmp/test_config_no_such_dir/x", NULL, 100) == ENOENT);
    write_tmp("inetstack_config: {mtu: abc}\n", 29);
    CHECK(config_load(&c, last_path, NULL, 0) == EINVAL);
    strcpy(small, "untouch");
    CHECK(config_load(&c, last_path, small, 0) == EINVAL && strcmp(small, "untouch") == 0);
    CHECK(config_load(&c, last_path, small, 1) == EINVAL && small[0] == '\0');
    CHECK(config_load(&c, last_path, small, sizeof(small)) == EINVAL && strcmp(small, "inetsta") == 0);
    unlink(last_path);
    setenv("MTU", "x", 1);
    CHECK(config_apply_env(&c, NULL, 0) == EINVAL);
    clear_env();
    CHECK(config_parse_yaml(&c, "[", 1, NULL, 0) == EINVAL);
    CHECK(config_parse_yaml(&c, "libdemi: {libos: x}", 19, NULL, 0) == EINVAL);
    CHECK(config_validate(NULL, NULL, 0) == EINVAL);
    CHECK(config_load(NULL, NULL, err, sizeof(err)) == EINVAL);
    CHECK(config_parse_yaml(NULL, "", 0, err, sizeof(err)) == EINVAL);
    CHECK(config_apply_env(NULL, err, sizeof(err)) == EINVAL);
    config_defaults(&c);
    CHECK(config_parse_yaml(&c, NULL, 0, err, sizeof(err)) == 0);
    config_free(NULL);
    config_defaults(NULL);
}

/* Odd but legal YAML, and text that is not YAML at all: no crash, 0 or EINVAL. */
static void test_robustness(void)
{
    static const char *const odd[] = {
        "~",
        "---\n",
        "? [a]\n: b\n",
        "&a [*a]\n",
        "x: &a {y: *a}\n",
        "demikernel: &d {local_ipv4_addr: 10.0.0.1}\nraw_socket: *d\n",
        "inetstack_config:\n  arp_table: &t {\"02:00:00:00:00:01\": 10.0.0.1}\n  other: *t\n",
        "libdemi:\n  libos:\n",
        "tcp_socket_options:\n  keepalive:\n",
        "tcp_socket_options:\n  keepalive: {enabled: {a: b}}\n",
        "---\nlibdemi: {libos: catmint}\n---\nlibdemi: {libos: bad}\n",
        "%YAML 1.1\n---\nlibdemi: {libos: catmint}\n",
        "libdemi: !!map {libos: !!str catnap}\n",
        "inetstack_config: {mtu: \"1500\\n\"}\n",
        "dpdk: {eal_init: [\"a\\0b\"]}\n",
        "demikernel: {\"local_ipv4_addr\\0x\": 1.2.3.4}\n",
        "inetstack_config: {\"mtu\\nmss\": 1}\n",
    };
    struct config c;
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        int rc = parse(&c, odd[i]);
        CHECK((rc == 0 || rc == EINVAL) && !strchr(err, '\n'));
        config_free(&c);
    }
    CHECK(parse(&c, "libdemi:\n  libos:\n") == 0 && strcmp(c.libos, "catnap") == 0);
    CHECK(parse(&c, "inetstack_config: {mtu: \"1500\\n\"}\n") == EINVAL && !strchr(err, '\n'));

    /* A long key in a known section (libyaml allows simple keys up to 1024 bytes). */
    size_t big = 1u << 20;
    char *text = malloc(big + 64);
    if (!text) {
        fprintf(stderr, "test_config: out of memory\n");
        exit(1);
    }
    strcpy(text, "inetstack_config:\n  ");
    memset(text + 20, 'k', 1000);
    strcpy(text + 1020, ": 1\n");
    CHECK(parse(&c, text) == 0);

    /* libyaml is quadratic in nesting depth and anchors: both are capped, so a
     * megabyte of either fails at once instead of taking minutes. */
    memset(text, '[', big);
    CHECK(config_parse_yaml(&c, text, big, err, sizeof(err)) == EINVAL && has("nested deeper than 64 levels"));
    /* The top-level mapping and 63 lists make 64 levels: fine. One more is not. */
    memcpy(text, "client: ", 8);
    memset(text + 8, '[', 63);
    memset(text + 8 + 63, ']', 63);
    strcpy(text + 8 + 126, "\n");
    CHECK(parse(&c, text) == 0);
    size_t n = (size_t)sprintf(text, "client:\n");
    for (int i = 0; i < 64; i++)
        n += (size_t)sprintf(text + n, "  [\n");
    CHECK(parse(&c, text) == EINVAL && has("nested deeper than 64 levels at line 65"));
    for (n = 0; n < big - 32;)
        n += (size_t)sprintf(text + n, "a%zu: &a%zu x\n", n, n);
    CHECK(parse(&c, text) == EINVAL && has("more than 256 anchors"));
    /* Aliases would make a short file stand for a huge one: refused in our sections. */
    n = (size_t)sprintf(text, "x: &m {");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(text + n, "k%d: 1, ", i);
    n += (size_t)sprintf(text + n, "}\ntcp_socket_options:\n");
    for (int i = 0; i < 10; i++)
        n += (size_t)sprintf(text + n, "  keepalive%d: *m\n", i);
    CHECK(parse(&c, text) == EINVAL && has("tcp_socket_options.keepalive0: YAML aliases (*m) are not allowed"));
    /* The keys visited in our sections are counted all the same (each unknown one warns). */
    int saved_level = log_level_g;
    log_level_g = LOGL_ERROR;
    n = (size_t)sprintf(text, "tcp_socket_options:\n  keepalive:\n");
    for (int i = 0; i < 4100; i++)
        n += (size_t)sprintf(text + n, "    k%d: 1\n", i);
    CHECK(parse(&c, text) == EINVAL && has("more than 4096 keys in known sections"));
    log_level_g = saved_level;
    free(text);

    /* Random damage to a valid file: whatever comes back is 0 or EINVAL with one line. */
    /* Damaged keys are unknown keys: keep their warnings out of the log. */
    int level = log_level_g;
    log_level_g = LOGL_ERROR;
    size_t len = strlen(full_yaml);
    char *buf = malloc(len);
    srand(1);
    for (int round = 0; buf && round < 3000; round++) {
        memcpy(buf, full_yaml, len);
        for (int k = 0; k < 1 + round % 8; k++)
            buf[(size_t)rand() % len] = (char)(round % 3 ? " :-[]{}\"'\n\t#&*!0a"[rand() % 18] : rand() % 256);
        size_t cut = round % 5 ? len : (size_t)rand() % len;
        err[0] = '\0';
        int rc = config_parse_yaml(&c, buf, cut, err, sizeof(err));
        if (rc == 0)
            rc = config_validate(&c, err, sizeof(err));
        CHECK((rc == 0 || rc == EINVAL) && !strchr(err, '\n') && (rc == 0 || err[0]));
        config_free(&c);
        config_defaults(&c);
    }
    free(buf);
    log_level_g = level;
}

/* ---- Hostile and careless files (issue 11, finding 8) ---- */

/* config_load() of @path in a child process that SIGALRM kills after 10 s,
 * so that a load that blocks (a FIFO with no writer) fails the check instead
 * of hanging the suite; the load itself takes microseconds. The child's
 * result and message come back in @rc and err. Returns false if it hung. */
static bool load_in_child(const char *path, int *rc)
{
    int p[2];
    if (pipe(p) != 0) {
        perror("test_config: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("test_config: fork");
        exit(1);
    }
    if (pid == 0) {
        struct config c;
        close(p[0]);
        alarm(10);
        int r = config_load(&c, path, err, sizeof(err));
        config_free(&c);
        if (write(p[1], err, strlen(err) + 1) < 0)
            _exit(100);
        _exit(r & 0x7f);
    }
    close(p[1]);
    ssize_t n = read(p[0], err, sizeof(err) - 1);
    err[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (WIFSIGNALED(status))
        snprintf(err, sizeof(err), "child killed by signal %d (hung in config_load?)", WTERMSIG(status));
    return WIFEXITED(status);
}

/* Anything but a regular file is refused at once, without reading it. */
static void test_not_regular(void)
{
    int rc;
    char fifo[] = "/tmp/test_config_fifo_XXXXXX";
    int fd = mkstemp(fifo);
    if (fd < 0) {
        perror("test_config: mkstemp");
        exit(1);
    }
    close(fd);
    unlink(fifo);
    if (mkfifo(fifo, 0600) != 0) {
        perror("test_config: mkfifo");
        exit(1);
    }
    CHECK(load_in_child(fifo, &rc) && rc == EINVAL && has(fifo) && has("is a FIFO, not a regular file"));
    /* The same through CONFIG_PATH, the way demi_init() finds it. */
    setenv("CONFIG_PATH", fifo, 1);
    CHECK(load_in_child(NULL, &rc) && rc == EINVAL && has(fifo) && has("FIFO"));
    clear_env();
    unlink(fifo);

    CHECK(load_in_child("/dev/null", &rc) && rc == EINVAL && has("/dev/null is a character device"));
    CHECK(load_in_child("/dev/zero", &rc) && rc == EINVAL && has("/dev/zero is a character device"));
    CHECK(load_in_child("/tmp", &rc) && rc == EISDIR && has("/tmp is a directory"));

    /* A file under /proc says its size is 0 but holds more: read whole. */
    CHECK(load_in_child("/proc/self/maps", &rc) && rc == EINVAL && (has("top level") || has("YAML")));

    /* A sparse file of 1 GiB: refused by its size, before any read. */
    write_tmp("", 0);
    if (truncate(last_path, 1ll << 30) == 0) {
        CHECK(load_in_child(last_path, &rc) && rc == EFBIG && has(last_path) && has("larger than 1 MiB"));
    }
    unlink(last_path);
}

/* Runs config_load() of @text with stderr captured into @out. */
static const char *warn_text;
static int warn_rc;

static void load_warn_text(void)
{
    struct config c;
    warn_rc = load_text(&c, warn_text);
    config_free(&c);
}

static int load_capture(const char *text, char *out, size_t outlen)
{
    warn_text = text;
    capture_stderr(load_warn_text, out, outlen);
    return warn_rc;
}

/* A top-level section close to one of ours is a misspelling: warn and name
 * the nearest. Others belong to the application: no warning. */
static void test_unknown_section(void)
{
    char out[2048];
    CHECK(load_capture("libdmi:\n  libos: catnip\n", out, sizeof(out)) == 0 &&
          strstr(out, "libdemi: warn: libdmi: unknown section, ignored; did you mean libdemi? (file ") &&
          strstr(out, last_path) && !strchr(strchr(out, '\n') + 1, '\n'));
    CHECK(load_capture("DPDK:\n  mbufs: 4096\n", out, sizeof(out)) == 0 && strstr(out, "DPDK: unknown section") &&
          strstr(out, "did you mean dpdk?"));
    CHECK(load_capture("inetstack_cnofig: {mtu: 1400}\n", out, sizeof(out)) == 0 &&
          strstr(out, "did you mean inetstack_config?"));
    CHECK(load_capture("tcp_socket_option:\n  nodelay: false\n", out, sizeof(out)) == 0 &&
          strstr(out, "did you mean tcp_socket_options?"));
    /* An application's own sections stay quiet. */
    CHECK(load_capture("client: {a: 1}\nserver: [1]\ncatnip: {}\n", out, sizeof(out)) == 0 && out[0] == '\0');
    /* A misspelt key gets the same hint. */
    CHECK(load_capture("inetstack_config:\n  mut: 1400\n", out, sizeof(out)) == 0 &&
          strstr(out, "inetstack_config.mut: unknown key, ignored; did you mean inetstack_config.mtu? (file "));
    CHECK(load_capture("tcp_socket_options:\n  keepalive: {enabeld: true}\n", out, sizeof(out)) == 0 &&
          strstr(out, "did you mean tcp_socket_options.keepalive.enabled?"));
    CHECK(load_capture("libdemi:\n  zzzzzz: 1\n", out, sizeof(out)) == 0 &&
          strstr(out, "libdemi.zzzzzz: unknown key, ignored (file ") && !strstr(out, "did you mean"));
    /* Past 16 unknown keys, the rest are counted in one line. */
    char many[2048] = "inetstack_config:\n";
    for (int i = 0; i < 40; i++)
        sprintf(many + strlen(many), "  unknown%d: 1\n", i);
    CHECK(load_capture(many, out, sizeof(out)) == 0 && strstr(out, "inetstack_config.unknown15: unknown key") &&
          !strstr(out, "unknown16:") && strstr(out, "24 more unknown keys or sections ignored, not listed (file "));
    /* Misspelt sections count with them: 40 give 16 lines and a count. */
    char sects[2048] = "";
    for (int i = 0; i < 40; i++)
        sprintf(sects + strlen(sects), "libdem%c%d: {}\n", 'a' + i % 26, i);
    CHECK(load_capture(sects, out, sizeof(out)) == 0 && strstr(out, "libdema0: unknown section") &&
          !strstr(out, "libdemq16:") &&
          strstr(out, "24 more unknown keys or sections ignored, not listed (file "));
    /* Anchors defined in complex keys, which the walk does not enter, chain
     * aliases deeper than the text nests: refused, never a deep recursion. */
    static char chain[65536];
    strcpy(chain, "app:\n  ? &k0 [0]\n  : 0\n");
    for (int i = 1; i < 200; i++)
        sprintf(chain + strlen(chain), "  ? &k%d [[*k%d]]\n  : 0\n", i, i - 1);
    strcat(chain, "  v: *k199\n");
    struct config c;
    CHECK(parse(&c, chain) == EINVAL && has("YAML nested deeper than 256 levels through aliases, under app.v[0]"));
    config_free(&c);
    /* An empty file, or one of comments, is the defaults: said once. */
    CHECK(load_capture("", out, sizeof(out)) == 0 && strstr(out, "holds no settings"));
    CHECK(load_capture("# only a comment\n\n", out, sizeof(out)) == 0 && strstr(out, "holds no settings"));
    CHECK(load_capture("~\n", out, sizeof(out)) == 0 && strstr(out, "holds no settings"));
}

/* A key given twice, at any level: an error naming it and both lines. */
static void test_duplicates(void)
{
    struct config c;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"inetstack_config:\n  mtu: 1400\n  mss: 1300\n  mtu: 1500\n",
         "inetstack_config.mtu: duplicate key, at lines 2 and 4"},
        {"libdemi: {libos: catnip}\ndpdk: {}\nlibdemi: {libos: catnap}\n",
         "libdemi: duplicate section, at lines 1 and 3"},
        {"tcp_socket_options:\n  keepalive:\n    enabled: true\n    enabled: false\n",
         "tcp_socket_options.keepalive.enabled: duplicate key, at lines 3 and 4"},
        {"libdemi: {libos: catnip, libos: catnap}\n", "libdemi.libos: duplicate key, twice at line 1"},
        {"inetstack_config:\n  mtu: 1400\n  \"mtu\": 1500\n", "inetstack_config.mtu: duplicate key, at lines 2 and 3"},
        {"client:\n  peers:\n    - {a: 1, b: 2}\n    - {a: 1, a: 2}\n",
         "client.peers[1].a: duplicate key, twice at line 4"},
        {"inetstack_config:\n  arp_table:\n    \"02:00:00:00:00:01\": 10.0.0.1\n    \"02:00:00:00:00:01\": 10.0.0.2\n",
         "inetstack_config.arp_table.02:00:00:00:00:01: duplicate key, at lines 3 and 4"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = load_text(&c, cases[i].yaml);
        if (!CHECK(rc == EINVAL && has(cases[i].want) && has(last_path) && !strchr(err, '\n')))
            fprintf(stderr, "      case %zu: %s", i, cases[i].yaml);
        config_free(&c);
    }
    /* The same key in different mappings is no duplicate. */
    CHECK(load_text(&c, "tcp_socket_options:\n  keepalive: {enabled: true}\n  linger: {enabled: true}\n") == 0);
    config_free(&c);
}

/* Every other hostile shape: an error naming the problem, never a crash or a hang. */
static void test_hostile_yaml(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        /* More than one document: the rest would be ignored silently. */
        {"---\nlibdemi: {libos: catmint}\n---\nlibdemi: {libos: catnap}\n",
         "YAML holds more than one document (the second begins at line 3)"},
        {"libdemi: {libos: catmint}\n...\n---\n", "more than one document"},
        /* Aliases inside our sections; the application's may use them. */
        {"x: &a {mtu: 1400}\ninetstack_config: *a\n", "inetstack_config: YAML aliases (*a) are not allowed"},
        {"inetstack_config:\n  mtu: &m 1400\n  mss: *m\n",
         "YAML aliases (*m) are not allowed in libdemi's sections, at line 3"},
        {"dpdk:\n  eal_init: [&x a, *x]\n", "aliases (*x)"},
        {"client: &s libdemi\n*s : {libos: catmint}\n", "YAML alias (*s) as a section name, at line 2"},
        /* A list or a mapping where one value is expected, and the reverse. */
        {"inetstack_config:\n  mtu: {a: 1}\n", "inetstack_config.mtu: expected a single value, not a mapping"},
        {"inetstack_config:\n  mtu: [1500]\n", "inetstack_config.mtu: expected a single value, not a list"},
        {"tcp_socket_options:\n  keepalive: [1]\n", "tcp_socket_options.keepalive: expected a mapping, not a list"},
        {"inetstack_config: [mtu, 1500]\n", "inetstack_config: expected a mapping of keys, not a list"},
        {"inetstack_config: 1500\n", "inetstack_config: expected a mapping of keys, not a value"},
        /* Numbers out of range or in forms we do not read. */
        {"inetstack_config: {mtu: -1500}\n", "\"-1500\" is not an integer"},
        {"inetstack_config: {mtu: +1500}\n", "\"+1500\" is not an integer"},
        {"inetstack_config: {mtu: 0x5dc}\n", "\"0x5dc\" is not an integer"},
        {"inetstack_config: {mtu: 1_500}\n", "\"1_500\" is not an integer"},
        {"inetstack_config: {mtu: 4294967296}\n", "out of range (at most 4294967295)"},
        {"inetstack_config: {mtu: 99999999999999999999999999}\n", "out of range"},
        {"libdemi: {heap_size: 18446744073709551616}\n", "libdemi.heap_size: \"18446744073709551616\" is out of range"},
        {"libdemi: {heap_size: 17179869184G}\n", "out of range"},
        {"inetstack_config: {tcp_msl: 18446744073709551616ns}\n", "out of range"},
        {"inetstack_config: {tcp_msl: 18446744074s}\n", "out of range"},
        {"libdemi: {heap_size: -4G}\n", "not a size"},
        /* Bytes that are not text. */
        {"libdemi:\n  libos: cat\xff\n", "YAML error at byte"},
        {"\xc0\xaflibdemi: {}\n", "YAML error at byte 0"},
        {"libdemi:\n  libos: \"cat\x01nap\"\n", "YAML error"},
        {"libdemi:\n\tlibos: catnap\n", "line 2"},
    };
    struct config c;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = load_text(&c, cases[i].yaml);
        if (!CHECK(rc == EINVAL && has(cases[i].want) && has(last_path) && !strchr(err, '\n')))
            fprintf(stderr, "      case %zu: %s\n", i, cases[i].yaml);
        config_free(&c);
    }
    /* A NUL byte in the file. */
    static const char nul[] = "libdemi:\n  libos: cat\0nap\n";
    write_tmp(nul, sizeof(nul) - 1);
    CHECK(config_load(&c, last_path, err, sizeof(err)) == EINVAL && has("YAML error"));
    unlink(last_path);

    /* An alias in the application's section is its business. */
    CHECK(load_text(&c, "client: {a: &x 1, b: *x}\nlibdemi: {libos: catmint}\n") == 0 &&
          strcmp(c.libos, "catmint") == 0);
    config_free(&c);

    /* Billion laughs in the application's section: nine levels of ten
     * aliases stand for 10^9 values, but every node is looked at once. */
    char *text = malloc(1 << 16);
    if (!text) {
        fprintf(stderr, "test_config: out of memory\n");
        exit(1);
    }
    size_t n = (size_t)sprintf(text, "client:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 10; i++) {
        n += (size_t)sprintf(text + n, "  l%d: &l%d [", i, i);
        for (int j = 0; j < 10; j++)
            n += (size_t)sprintf(text + n, "*l%d%s", i - 1, j < 9 ? ", " : "]\n");
    }
    CHECK(load_text(&c, text) == 0);
    config_free(&c);
    /* The same aimed at our section: refused at the first alias. */
    sprintf(text + n, "inetstack_config:\n  arp_table: *l9\n");
    CHECK(load_text(&c, text) == EINVAL && has("inetstack_config.arp_table: YAML aliases (*l9)"));
    config_free(&c);

    /* A huge scalar: quoted short in the message. */
    size_t big = 900000;
    text = realloc(text, big + 64);
    if (!text) {
        fprintf(stderr, "test_config: out of memory\n");
        exit(1);
    }
    strcpy(text, "inetstack_config:\n  mtu: ");
    memset(text + strlen(text), '9', big);
    strcpy(text + 25 + big, "\n");
    CHECK(load_text(&c, text) == EINVAL && has("inetstack_config.mtu") && has("out of range") && strlen(err) < 300);
    strcpy(text, "raw_socket:\n  linux_interface_name: ");
    memset(text + strlen(text), 'v', big);
    strcpy(text + 36 + big, "\n");
    CHECK(load_text(&c, text) == EINVAL && has("too long") && strlen(err) < 300);
    free(text);
}

/* raw_socket.backend and xdp_native. */
static void test_raw_socket_keys(void)
{
    struct config c;
    config_defaults(&c);
    CHECK(strcmp(c.raw_backend, "auto") == 0 && !c.xdp_native);
    CHECK(load_text(&c, "raw_socket: {backend: packet, xdp_native: true}\n") == 0);
    CHECK(strcmp(c.raw_backend, "packet") == 0 && c.xdp_native);
    config_free(&c);
    CHECK(load_text(&c, "raw_socket: {backend: netmap}\n") == EINVAL && has("raw_socket.backend"));
    config_free(&c);
    setenv("RAW_SOCKET_BACKEND", "xdp", 1);
    CHECK(load_text(&c, "") == 0 && strcmp(c.raw_backend, "xdp") == 0);
    config_free(&c);
    clear_env();
}

/* The TCP keys of inetstack_config: defaults, file, environment, errors. */
static void test_tcp_keys(void)
{
    struct config c;
    config_defaults(&c);
    CHECK(c.tcp_cc == CONFIG_CC_CUBIC && c.tcp_delack_ns == 0 && c.tcp_msl_ns == 30000000000ull);
    CHECK(c.tcp_rcvbuf == 4u << 20 && c.tcp_sack && c.tcp_timestamps && c.tcp_wscale && c.tcp_syn_retries == 6);
    CHECK(load_text(&c, "inetstack_config:\n  tcp_congestion_control: NewReno\n  tcp_delayed_ack: 40ms\n"
                        "  tcp_msl: 5\n  tcp_rcvbuf: 16M\n  tcp_sack: no\n  tcp_rto_min: 10ms\n"
                        "  tcp_syn_retries: 3\n") == 0);
    CHECK(c.tcp_cc == CONFIG_CC_NEWRENO && c.tcp_delack_ns == 40000000ull && c.tcp_msl_ns == 5000000000ull);
    CHECK(c.tcp_rcvbuf == 16u << 20 && !c.tcp_sack && c.tcp_rto_min_ns == 10000000ull && c.tcp_syn_retries == 3);
    config_free(&c);
    setenv("TCP_CONGESTION_CONTROL", "cubic", 1);
    setenv("TCP_WINDOW_SCALE", "off", 1);
    CHECK(load_text(&c, "inetstack_config: {tcp_congestion_control: newreno}\n") == 0);
    CHECK(c.tcp_cc == CONFIG_CC_CUBIC && !c.tcp_wscale);
    config_free(&c);
    clear_env();
    CHECK(load_text(&c, "inetstack_config: {tcp_congestion_control: vegas}\n") == EINVAL &&
          has("inetstack_config.tcp_congestion_control") && has("cubic, newreno"));
    config_free(&c);
    CHECK(load_text(&c, "inetstack_config: {tcp_rcvbuf: 2G}\n") == EINVAL && has("inetstack_config.tcp_rcvbuf"));
    config_free(&c);
    setenv("TCP_RTO_MIN", "0", 1);
    CHECK(load_text(&c, "") == EINVAL && has("tcp_rto_min"));
    config_free(&c);
    clear_env();
    /* How long a connection whose peer is gone, or closed, may live. */
    config_defaults(&c);
    CHECK(c.tcp_retries2 == 15 && c.tcp_orphan_retries == 8 && c.tcp_fin_timeout_ns == 60000000000ull);
    setenv("TCP_ORPHAN_RETRIES", "3", 1);
    CHECK(load_text(&c, "inetstack_config: {tcp_retries2: 9, tcp_fin_timeout: 10s}\n") == 0);
    CHECK(c.tcp_retries2 == 9 && c.tcp_orphan_retries == 3 && c.tcp_fin_timeout_ns == 10000000000ull);
    config_free(&c);
    clear_env();
    CHECK(load_text(&c, "inetstack_config: {tcp_retries2: 0}\n") == EINVAL && has("tcp_retries2"));
    config_free(&c);
    CHECK(load_text(&c, "inetstack_config: {tcp_fin_timeout: 7200}\n") == EINVAL && has("tcp_fin_timeout"));
    config_free(&c);
}

int main(void)
{
    clear_env();
    test_tcp_keys();
    test_raw_socket_keys();
    test_defaults();
    test_full_file();
    test_env_over_file();
    test_parsers();
    test_file_errors();
    test_env_errors();
    test_syntax();
    test_mtu_mss();
    test_lists();
    test_unknown();
    test_files();
    test_null_err();
    test_robustness();
    test_not_regular();
    test_unknown_section();
    test_duplicates();
    test_hostile_yaml();
    clear_env();
    if (failures) {
        fprintf(stderr, "test_config: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_config: all checks passed\n");
    return 0;
}
