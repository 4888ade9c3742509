// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// XDP program of ipoe-router: every frame received on an interface that ipoed
// owns goes to the AF_XDP socket of its (interface, rx queue). The interface's
// base slot comes from `ports` (filled by userspace per ifindex) so several
// interfaces share one XSKMAP without colliding on queue 0.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_QUEUES 64

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 8 * MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

// ifindex -> port number (0..7); slot = port * MAX_QUEUES + rx_queue_index.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} ports SEC(".maps");

enum { STAT_REDIRECT, STAT_NO_PORT, STAT_BAD_QUEUE, STAT_NO_SOCKET, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);
	if (v)
		*v += 1;
}

SEC("xdp")
int xsk_redirect(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *port = bpf_map_lookup_elem(&ports, &ifindex);
	if (!port) {
		count(STAT_NO_PORT);
		return XDP_PASS;
	}
	__u32 q = ctx->rx_queue_index;
	if (q >= MAX_QUEUES) {
		count(STAT_BAD_QUEUE);
		return XDP_DROP;
	}
	__u32 slot = *port * MAX_QUEUES + q;
	// While ipoed starts or stops a queue has no socket: drop rather than hand
	// the frame to a kernel stack that has no addresses on this interface.
	if (!bpf_map_lookup_elem(&xsks, &slot)) {
		count(STAT_NO_SOCKET);
		return XDP_DROP;
	}
	count(STAT_REDIRECT);
	return bpf_redirect_map(&xsks, slot, XDP_DROP);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
