/*
 * dev/netif: the interface lookup and the socket sleep that the devices on
 * a Linux interface share (see netif.h). Control path only: never on a
 * per-packet path.
 */
#include "dev/netif.h"

#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int netif_info(const char *ifname, uint8_t mac[6], uint32_t *mtu, int *ifindex)
{
    if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ)
        return EINVAL;
    int idx = (int)if_nametoindex(ifname);
    if (idx == 0)
        return ENODEV;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    int e = 0;
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
        e = errno;
    else
        memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    if (!e && ioctl(fd, SIOCGIFMTU, &ifr) < 0)
        e = errno;
    else if (!e)
        *mtu = (uint32_t)ifr.ifr_mtu;
    close(fd);
    *ifindex = idx;
    return e;
}

void netif_wait_fd(int fd, int also_fd, uint64_t timeout_ns)
{
    struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = also_fd, .events = POLLIN}};
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
        ts.tv_nsec = (long)(timeout_ns % 1000000000u);
        tsp = &ts;
    }
    ppoll(pfd, also_fd >= 0 ? 2 : 1, tsp, NULL);
}
