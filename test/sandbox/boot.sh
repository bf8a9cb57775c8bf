#!/bin/bash
# Boot script for one hashd sandbox host. Started by test/sandbox/harness.ts; do not run by hand.
#
#   boot.sh outer    in the host's network namespace, machine's mount namespace: join the host's
#                    cgroups, then re-exec as `inner` in new pid/mount/uts/ipc/cgroup namespaces.
#   boot.sh inner    pid 1 of the new pid namespace: build the host's root (overlay over /, fresh
#                    /run, /tmp, /var/tmp, private /dev, /sys, /proc, persistent /nix), pivot_root
#                    into it, run the safety check and only then exec systemd.
#   boot.sh dryrun   like inner, but prints SAFE-TO-BOOT instead of exec'ing systemd (tests).
#   boot.sh check    only the safety check, in the current namespaces (tests; fails on the machine).
#
# DANGER: a systemd that sees the machine's real /tmp, /run or /var/tmp deletes everything in the
# machine's /tmp (systemd-tmpfiles at boot). safety_check below must pass before systemd is exec'd.
#
# Environment (set by the harness):
#   HASHD_SB_BASE      per-host tmpfs in the machine's mount namespace (upper/, work/, nix/, config/)
#   HASHD_SB_HOST      host name
#   HASHD_SB_OUTER_MNT mount namespace id (readlink /proc/self/ns/mnt) of the harness
#   HASHD_SB_CGROUPS   cgroup directories (one per hierarchy) this host lives in (outer only)
#   HASHD_SB_CGMOUNTS  cgroup hierarchies to mount in the host: "dir:fstype:options ..."
#   HASHD_SB_MASK      units to mask (symlink to /dev/null in /etc/systemd/system)
#   HASHD_SB_FAULT     tests only (dryrun): "skip-tmp" leaves /tmp unmounted, to prove the check refuses
set -euo pipefail

die() {
  echo "hashd-sandbox[${HASHD_SB_HOST:-?}]: $*" >&2
  exit 70
}

# Succeeds only when this process is pid 1 of its own pid namespace, in a mount namespace that is not
# the harness's, with an overlay as / and its own tmpfs mounts on /tmp, /run and /var/tmp.
safety_check() {
  local problems=() fs d
  [[ $$ == 1 ]] || problems+=("not pid 1 of a private pid namespace (pid $$)")
  if [[ -z ${HASHD_SB_OUTER_MNT:-} ]]; then
    problems+=("HASHD_SB_OUTER_MNT not set")
  elif [[ $(readlink /proc/self/ns/mnt) == "$HASHD_SB_OUTER_MNT" ]]; then
    problems+=("still in the harness's mount namespace")
  fi
  fs=$(findmnt -n -o FSTYPE --mountpoint / 2>/dev/null | tail -n 1 || true)
  [[ $fs == overlay ]] || problems+=("/ is '${fs:-?}', not an overlay")
  for d in /tmp /run /var/tmp; do
    fs=$(findmnt -n -o FSTYPE --mountpoint "$d" 2>/dev/null | tail -n 1 || true)
    [[ $fs == tmpfs ]] || problems+=("$d is not its own tmpfs mount (found '${fs:-none}')")
  done
  if findmnt -n --mountpoint /.oldroot >/dev/null 2>&1; then
    problems+=("the machine's old root is still mounted at /.oldroot")
  fi
  if ((${#problems[@]})); then
    echo "hashd-sandbox[${HASHD_SB_HOST:-?}]: REFUSING to exec systemd:" >&2
    printf '  - %s\n' "${problems[@]}" >&2
    return 1
  fi
  return 0
}

stage_outer() {
  local d
  for d in ${HASHD_SB_CGROUPS:-}; do
    echo $$ >"$d/cgroup.procs" || die "cannot join cgroup $d"
  done
  # --kill-child: if the unshare process dies (it gets SIGKILL when the harness dies, see
  # harness.ts), systemd is killed too, so a killed harness leaves no running host behind.
  exec unshare --pid --fork --kill-child --mount --uts --ipc --cgroup --propagation private \
    /bin/bash "$0" "${1/outer/inner}"
}

stage_inner() {
  local mode=$1 B=$HASHD_SB_BASE R u spec dir fstype opts
  R=$B/root
  mount --make-rprivate /
  # /proc is still the machine's here, so /proc/self/stat gives our pid as the harness sees it.
  local outer_pid _rest
  read -r outer_pid _rest </proc/self/stat

  mkdir -p "$B/upper" "$B/work" "$B/nix" "$R"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$B/upper,workdir=$B/work" "$R"
  [[ $(findmnt -n -o FSTYPE --mountpoint "$R" | tail -n 1) == overlay ]] || die "overlay mount failed"

  # API file systems.
  mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
  mount --bind "$R/proc/sys" "$R/proc/sys"
  mount -o remount,bind,ro "$R/proc/sys"
  mount --bind "$R/proc/sys/net" "$R/proc/sys/net"
  mount -o remount,bind,rw "$R/proc/sys/net"
  if [[ -e $R/proc/sysrq-trigger ]]; then
    mount --bind "$R/proc/sysrq-trigger" "$R/proc/sysrq-trigger"
    mount -o remount,bind,ro "$R/proc/sysrq-trigger"
  fi
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
  mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs "$R/sys/fs/cgroup"
  for spec in ${HASHD_SB_CGMOUNTS:-}; do
    IFS=: read -r dir fstype opts <<<"$spec"
    mkdir -p "$R/sys/fs/cgroup/$dir"
    mount -t "$fstype" -o "$opts" "$fstype" "$R/sys/fs/cgroup/$dir"
  done
  mount -o remount,ro "$R/sys/fs/cgroup"

  # Private /dev with fresh nodes (never bind the machine's nodes: units chmod/chown them).
  mount -t tmpfs -o mode=755,nosuid,size=4m tmpfs "$R/dev"
  mknod -m 666 "$R/dev/null" c 1 3
  mknod -m 666 "$R/dev/zero" c 1 5
  mknod -m 666 "$R/dev/full" c 1 7
  mknod -m 666 "$R/dev/random" c 1 8
  mknod -m 666 "$R/dev/urandom" c 1 9
  mknod -m 666 "$R/dev/tty" c 5 0
  mknod -m 600 "$R/dev/console" c 1 3 # a null device named console
  mkdir -p "$R/dev/pts" "$R/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$R/dev/pts"
  ln -s pts/ptmx "$R/dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
  ln -s /proc/self/fd "$R/dev/fd"
  ln -s /proc/self/fd/0 "$R/dev/stdin"
  ln -s /proc/self/fd/1 "$R/dev/stdout"
  ln -s /proc/self/fd/2 "$R/dev/stderr"

  # Volatile directories: fresh on every boot.
  mkdir -p "$R/run" "$R/tmp" "$R/var/tmp"
  if [[ ${HASHD_SB_FAULT:-} != skip-tmp || $mode != dryrun ]]; then
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
  fi
  mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/var/tmp"

  # Persistent private Nix store (lives in the harness-side tmpfs, survives reboots).
  mkdir -p "$R/nix"
  mount --bind "$B/nix" "$R/nix"
  mkdir -p "$R/nix/store" "$R/nix/var/nix/daemon-socket" "$R/nix/var/nix/db"
  chown root:nixbld "$R/nix/store" 2>/dev/null || true
  chmod 1775 "$R/nix/store"

  # Host configuration.
  cp "$B/config/hostname" "$R/etc/hostname"
  cp "$B/config/hosts" "$R/etc/hosts"
  if [[ ! -e $R/etc/hashd-sandbox-initialized ]]; then
    # First boot of this host's "disk": identity, sshd, nix, journald.
    tr -d '-' </proc/sys/kernel/random/uuid >"$R/etc/machine-id"
    # ed25519 only: RSA key generation would cost ~0.6 s per first boot.
    rm -f "$R"/etc/ssh/ssh_host_*
    ssh-keygen -q -t ed25519 -N "" -C "root@$(cat "$B/config/hostname")" -f "$R/etc/ssh/ssh_host_ed25519_key"
    rm -rf "$R/root/.ssh"
    mkdir -p -m 700 "$R/root/.ssh"
    : >"$R/etc/fstab"
    mkdir -p "$R/etc/ssh/sshd_config.d"
    cat >"$R/etc/ssh/sshd_config.d/hashd-sandbox.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
    mkdir -p "$R/etc/nix"
    cat >"$R/etc/nix/nix.conf" <<'EOF'
# written by the hashd test sandbox (test/sandbox/boot.sh)
experimental-features = nix-command
sandbox = false
substituters =
build-users-group = nixbld
EOF
    mkdir -p "$R/etc/systemd/journald.conf.d"
    cat >"$R/etc/systemd/journald.conf.d/hashd-sandbox.conf" <<'EOF'
[Journal]
Storage=volatile
RuntimeMaxUse=16M
EOF
    touch "$R/etc/hashd-sandbox-initialized"
  fi
  mkdir -p "$R/etc/systemd/system"
  for u in ${HASHD_SB_MASK:-}; do
    ln -sfn /dev/null "$R/etc/systemd/system/$u"
  done
  # Debian enables these through the machine's /etc; make sure a mask from an older run is gone.
  for u in ssh.service nix-daemon.socket nix-daemon.service; do
    [[ -L $R/etc/systemd/system/$u && $(readlink "$R/etc/systemd/system/$u") == /dev/null ]] &&
      rm -f "$R/etc/systemd/system/$u"
  done
  mkdir -p "$R/etc/systemd/system/multi-user.target.wants" "$R/etc/systemd/system/sockets.target.wants"
  ln -sfn /lib/systemd/system/ssh.service "$R/etc/systemd/system/multi-user.target.wants/ssh.service"
  ln -sfn /lib/systemd/system/nix-daemon.socket "$R/etc/systemd/system/sockets.target.wants/nix-daemon.socket"
  ln -sfn /lib/systemd/system/multi-user.target "$R/etc/systemd/system/default.target"
  hostname "$(cat "$B/config/hostname")"

  # Enter the new root and drop the machine's.
  cd "$R"
  mkdir -p .oldroot
  pivot_root . .oldroot
  cd /
  umount -l /.oldroot
  rmdir /.oldroot
  # Shared propagation inside the host, as systemd sets it up on a real machine (it skips that when
  # it runs in a container): LoadCredential= mounts a unit's credentials in a child mount namespace
  # and relies on propagation to bring them to PID 1's, else the unit finds its credential
  # directory empty (checked with systemd 252). The machine's mount namespace takes no part: every
  # mount here was made private above (and by unshare --propagation private) before pivot_root, so
  # the peer groups this creates hold only this host's own namespaces.
  mount --make-rshared /

  safety_check || exit 70

  if [[ $mode == dryrun ]]; then
    echo SAFE-TO-BOOT
    exit 0
  fi
  # Tell the harness our pid (as the machine sees it) through the base tmpfs, still open as $B
  # in no namespace now, so write it through the fd opened before pivot_root instead.
  echo "$outer_pid" >&9
  exec 9>&-
  exec env -i container=hashd-sandbox PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system --log-target=null --unit=multi-user.target
}

case "${1:-}" in
outer | outer-dryrun) stage_outer "$1" ;;
inner | inner-dryrun)
  [[ ${HASHD_SB_BASE:-} =~ ^/run/hashd-sandbox/[a-z0-9]+/[a-z0-9-]+$ ]] || die "bad HASHD_SB_BASE '${HASHD_SB_BASE:-}'"
  [[ $(findmnt -n -o FSTYPE --mountpoint "$HASHD_SB_BASE" | tail -n 1) == tmpfs ]] ||
    die "$HASHD_SB_BASE is not a tmpfs mount"
  exec 9>"$HASHD_SB_BASE/pid.tmp"
  if [[ $1 == inner-dryrun ]]; then stage_inner dryrun; else stage_inner boot; fi
  ;;
check)
  safety_check || exit 70
  echo SAFE-TO-BOOT
  ;;
*)
  echo "usage: boot.sh outer|outer-dryrun|check" >&2
  exit 2
  ;;
esac
