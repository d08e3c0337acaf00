#!/usr/bin/env bash
# Runs as the first process of a lab host, already inside the host's network namespace
# and a fresh private mount namespace (ip netns exec + unshare --mount). Gives the host
# its own libvirt directories and cgroup subtree, then becomes a child subreaper running
# libvirtd in the foreground.
#   host-init.sh STATE_DIR CGROUP_NAME SHARED_DIR
set -euo pipefail
state=$1
cg=$2
shared=$3

for d in run/libvirt var/lib/libvirt etc/libvirt var/log/libvirt var/cache/libvirt; do
  mkdir -p "/$d" "$state/$d"
  mount --bind "$state/$d" "/$d"
done

# The site's shared storage (a SAN or NFS export on real hosts): the same directory at the
# same path in every host of the site, holding the disks of HA VMs.
mkdir -p /srv/keizoku-shared "$shared"
mount --bind "$shared" /srv/keizoku-shared

# ip netns exec remounted /sys, which hid the cgroup mounts: mount the v1 controllers again,
# move into this host's own subtree, then enter a cgroup namespace rooted there, so that
# libvirt's /machine of each host is a different directory.
controllers=(cpu cpuacct cpuset memory devices freezer blkio pids)
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in "${controllers[@]}"; do
  mkdir -p "/sys/fs/cgroup/$c"
  mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
  mkdir -p "/sys/fs/cgroup/$c/$cg"
done
cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$cg/cpuset.cpus"
cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$cg/cpuset.mems"
for c in "${controllers[@]}"; do echo $$ >"/sys/fs/cgroup/$c/$cg/cgroup.procs"; done

# sshd for the qemu+ssh transport, in this host's namespaces so virt-ssh-helper finds this
# host's libvirt socket; a child of this process, so the subreaper below reaps it and
# teardown finds it among the host's processes.
if [[ -f $state/sshd_config ]]; then
  mkdir -p /run/sshd
  /usr/sbin/sshd -D -e -f "$state/sshd_config" >>"$state/sshd.log" 2>&1 </dev/null &
fi

# virtlockd: libvirt's lock manager (qemu.conf lock_manager = "lockd") takes a lease on each
# disk before QEMU starts, so this host refuses to start a VM whose disk another live host
# holds. A child of this process, so a fence (killing the host's tree) releases its leases.
virtlockd -p /run/libvirt/virtlockd.pid >>"$state/virtlockd.log" 2>&1 </dev/null &

exec unshare --cgroup -- bash -c '
  set -euo pipefail
  for c in '"${controllers[*]}"'; do umount "/sys/fs/cgroup/$c"; mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"; done
  # Orphans are reaped at once only by a subreaper; libvirt waits for each dead QEMU pid to vanish.
  exec perl -e "syscall(157, 36, 1, 0, 0, 0) == 0 or die \"prctl: \$!\"; my \$c = fork; defined \$c or die; if (!\$c) { exec @ARGV or die \"exec: \$!\" } 1 while wait != -1" \
    libvirtd --listen --pid-file /run/libvirt/libvirtd.pid
'
