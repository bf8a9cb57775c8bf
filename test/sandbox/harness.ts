/**
 * Integration-test sandbox: each host is a set of Linux namespaces with systemd as PID 1, a private
 * Nix store with nix-daemon, sshd, and an address on a private bridge (10.231.0.0/24) that exists only
 * in the sandbox's own "switch" network namespace. docs/architecture.md ("The sandbox") says why it is
 * built this way; boot.sh and this file are the recipe.
 *
 * Layout on the machine (all removed by destroy()):
 *   /run/hashd-sandbox/<id>/owner           JSON: harness pid (+ start time), netns names, cgroups
 *   /run/hashd-sandbox/<id>/<host>          tmpfs mounted in the harness's mount namespace = the
 *                                           host's "disk": upper/ work/ (overlay over /), nix/
 *                                           (bind-mounted on the host's /nix), config/, boot.log
 *   /run/netns/hd<id>-sw, hd<id>-<host>     network namespaces (bridge br0 lives in -sw)
 *   <cgroup mount>/<our cgroup>/hashd-<id>-<host> in every cgroup hierarchy (nested under ours)
 *
 * Safety: boot.sh refuses to exec systemd unless / is an overlay and /tmp, /run, /var/tmp are its own
 * tmpfs mounts in a private mount namespace (a systemd seeing the machine's /tmp wipes it). After
 * boot the harness checks the same again from outside, via /proc/<pid>/mountinfo.
 *
 * Host setup (boot.sh): hostname, /etc/hosts with every host of the sandbox, MASKED_UNITS masked,
 * ssh.service and nix-daemon.socket enabled, default target multi-user.target. On a host's first
 * boot: a fresh machine-id and sshd host keys, root login by key only, an empty /root/.ssh, empty
 * fstab, volatile journald, and /etc/nix/nix.conf with `experimental-features = nix-command`,
 * `sandbox = false`, `substituters =` and `build-users-group = nixbld` (the machine's nixbld group
 * and users are visible through the overlay, so the daemon builds as nixbld users).
 *
 * Nix: Debian's nix-daemon.socket listens on /nix/var/nix/daemon-socket/socket (boot.sh creates that
 * directory, the unit's ConditionPathIsReadWrite needs it). nixBuild() builds through the daemon
 * (NIX_REMOTE=daemon); other nix commands run by exec() as root use the store directly (Nix's
 * "auto" store), which shares the same database. `nix copy --to ssh-ng://root@<host>` runs
 * `nix-daemon --stdio` on the receiving host, which checks signatures against its nix.conf
 * (require-sigs defaults to true), so trustPublicKeys() edits nix.conf and restarts nix-daemon.
 *
 * Lifetime: hosts are killed by destroy(), by exit/SIGINT/SIGTERM handlers, and, if the harness dies
 * by SIGKILL, by a parent-death signal (setpriv --pdeathsig + unshare --kill-child). Namespaces and
 * mounts left by a SIGKILLed harness are removed by reapStale(), which create() runs first.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { constants as osConstants } from "node:os";
import * as path from "node:path";
import type { Subprocess } from "bun";

export interface SandboxOptions {
  /** Host names, e.g. ["a", "b"]: lower case letters, digits and "-", starting with a letter. */
  hosts: string[];
  /** Size limit of each host's disk tmpfs (overlay upper layer + /nix), default "2g". */
  diskSize?: string;
  /** Boot timeout per host in ms (until `systemctl is-system-running` is running/degraded), default 60 s. */
  bootTimeoutMs?: number;
  /** Extra units to mask on every host (in addition to MASKED_UNITS). */
  mask?: string[];
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: Record<string, string>;
  input?: string | Uint8Array;
  /** Kill the command after this many ms (code 137, note appended to stderr). Default 120 s. */
  timeoutMs?: number;
  /** Working directory inside the host (default /). */
  cwd?: string;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  stdin?: "pipe" | "ignore";
  stdout?: "pipe" | "ignore" | "inherit";
  stderr?: "pipe" | "ignore" | "inherit";
}

/** Where the sandbox keeps per-host disks and owner records on the machine. */
export const STATE_ROOT = "/run/hashd-sandbox";
export const SUBNET = "10.231.0";
export const FIRST_HOST_OCTET = 10;
const BOOT_SH = path.join(import.meta.dir, "boot.sh");
const DEFAULT_EXEC_TIMEOUT_MS = 120_000;
const POLL_MS = 50;

/** Environment of commands run in a host (the harness's own environment is not passed on). */
export const HOST_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  USER: "root",
  LOGNAME: "root",
  LANG: "C.UTF-8",
  TERM: "dumb",
};

/**
 * Units masked on every host: everything this Debian machine enables that a test host does not need
 * (postgresql, nginx, timers, ...), consoles/gettys, and units that would touch machine-global state
 * (udev, sysctl, binfmt, kernel modules, audit, kernel debug file systems) or wait for hardware.
 */
export const MASKED_UNITS: readonly string[] = [
  // enabled on the machine, not needed on a test host
  "postgresql.service",
  "postgresql@.service",
  "nginx.service",
  // setup.sh installs serf for the gossip benchmark (which starts its own agents); Debian enables
  // its unit, whose agent would take the gossip port 7946 on every host
  "serf.service",
  "e2scrub_reap.service",
  "e2scrub_all.service",
  "e2scrub_all.timer",
  "apt-daily.service",
  "apt-daily.timer",
  "apt-daily-upgrade.service",
  "apt-daily-upgrade.timer",
  "dpkg-db-backup.service",
  "dpkg-db-backup.timer",
  "fstrim.service",
  "fstrim.timer",
  "man-db.service",
  "man-db.timer",
  "logrotate.timer",
  "cron.service",
  "anacron.service",
  "anacron.timer",
  "rsyslog.service",
  "docker.service",
  "docker.socket",
  "containerd.service",
  "packagekit.service",
  "packagekit-offline-update.service",
  "systemd-pstore.service",
  "systemd-timesyncd.service",
  "networking.service",
  "ifupdown-pre.service",
  "systemd-networkd.service",
  "systemd-networkd.socket",
  "systemd-networkd-wait-online.service",
  "systemd-resolved.service",
  // consoles
  "getty.target",
  "getty@.service",
  "getty-static.service",
  "serial-getty@.service",
  "console-getty.service",
  "container-getty@.service",
  "systemd-ask-password-console.path",
  "systemd-ask-password-wall.path",
  // machine-global state / hardware
  "systemd-udevd.service",
  "systemd-udevd-control.socket",
  "systemd-udevd-kernel.socket",
  "systemd-udev-trigger.service",
  "systemd-udev-settle.service",
  "systemd-hwdb-update.service",
  "systemd-modules-load.service",
  "kmod-static-nodes.service",
  "systemd-sysctl.service",
  "systemd-binfmt.service",
  "proc-sys-fs-binfmt_misc.automount",
  "proc-sys-fs-binfmt_misc.mount",
  "sys-kernel-config.mount",
  "sys-kernel-debug.mount",
  "sys-kernel-tracing.mount",
  "sys-fs-fuse-connections.mount",
  "dev-hugepages.mount",
  "systemd-journald-audit.socket",
  "systemd-random-seed.service",
  "systemd-firstboot.service",
  "systemd-machine-id-commit.service",
  "systemd-remount-fs.service",
  "systemd-fsck-root.service",
  "systemd-repart.service",
  "systemd-pcrphase.service",
  "systemd-pcrphase-sysinit.service",
  "e2scrub@.service",
];

/** Tools the harness runs on the machine (absolute paths are looked up in PATH when missing). */
const REQUIRED_TOOLS = [
  "ip",
  "unshare",
  "nsenter",
  "setpriv",
  "setsid",
  "findmnt",
  "mount",
  "umount",
  "mknod",
  "pivot_root",
  "bash",
  "ssh",
  "ssh-keygen",
  "sshd",
  "nix",
  "nix-build",
  "nix-store",
  "nix-daemon",
] as const;

const TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * NIX_CONFIG for building test closures without nixpkgs and without internet: the host is the
 * isolation (no Nix sandbox), and an empty substituters keeps Nix from retrying the public cache.
 */
export function nixEnv(): Record<string, string> {
  return { NIX_CONFIG: "experimental-features = nix-command\nsandbox = false\nsubstituters =" };
}

// ---------------------------------------------------------------------------------------------------
// Preflight

export interface PreflightOverrides {
  uid?: number;
  /** Extra tool names to require (tests use this to check the "missing tool" refusal). */
  extraTools?: string[];
}

/** Throws a clear error unless we run as root with every required tool and kernel feature present. */
export function preflight(overrides: PreflightOverrides = {}): Record<string, string> {
  const problems: string[] = [];
  const uid = overrides.uid ?? process.getuid?.() ?? -1;
  if (uid !== 0) problems.push(`must run as root (uid is ${uid}): it creates namespaces, mounts and cgroups`);
  const tools: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of [...REQUIRED_TOOLS, ...(overrides.extraTools ?? [])]) {
    const found = Bun.which(name, { PATH: TOOL_PATH });
    if (found) tools[name] = found;
    else missing.push(name);
  }
  if (missing.length) {
    problems.push(
      `missing required tools: ${missing.join(", ")} ` +
        "(Debian: apt-get install iproute2 util-linux openssh-server openssh-client nix-bin nix-setup-systemd systemd)",
    );
  }
  if (!fs.existsSync("/lib/systemd/systemd"))
    problems.push("missing /lib/systemd/systemd (apt-get install systemd)");
  if (!fs.existsSync(BOOT_SH)) problems.push(`missing ${BOOT_SH}`);
  const filesystems = readText("/proc/filesystems") ?? "";
  for (const f of ["overlay", "tmpfs"]) {
    if (!new RegExp(`\\s${f}$`, "m").test(filesystems)) problems.push(`kernel lacks the ${f} file system`);
  }
  // Debian's nix-setup-systemd brings both (scripts/setup.sh installs it)
  if (!/^nixbld:/m.test(readText("/etc/group") ?? ""))
    problems.push("group nixbld is missing (apt-get install nix-setup-systemd)");
  if (!fs.existsSync("/lib/systemd/system/nix-daemon.socket"))
    problems.push("nix-daemon.socket is missing (apt-get install nix-setup-systemd)");
  if (problems.length) throw new Error(`hashd sandbox refuses to boot:\n  - ${problems.join("\n  - ")}`);
  return tools;
}

// ---------------------------------------------------------------------------------------------------
// Safety check on a booted host, from outside (boot.sh did the same before exec'ing systemd)

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const l = left.split(" ");
    const r = right.split(" ");
    out.push({
      mountPoint: unescapeMount(l[4] ?? ""),
      fsType: r[0] ?? "",
      source: unescapeMount(r[1] ?? ""),
    });
  }
  return out;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/**
 * Problems that make a mount table unsafe for systemd: "/" must be an overlay and /tmp, /run and
 * /var/tmp must be tmpfs mounts of their own (the last mount on a mount point wins). Empty = safe.
 */
export function checkMountinfo(text: string): string[] {
  const top = new Map<string, MountEntry>();
  for (const m of parseMountinfo(text)) top.set(m.mountPoint, m);
  const problems: string[] = [];
  const root = top.get("/");
  if (root?.fsType !== "overlay")
    problems.push(`/ is ${root ? `'${root.fsType}'` : "missing"}, not an overlay`);
  for (const d of ["/tmp", "/run", "/var/tmp"]) {
    const m = top.get(d);
    if (m?.fsType !== "tmpfs") problems.push(`${d} is not its own tmpfs mount`);
  }
  if (top.has("/.oldroot")) problems.push("the machine's old root is still mounted at /.oldroot");
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// Host paths through /proc/<pid>/root without following symlinks out of the host

/**
 * Resolves `p` inside the root directory `rootPrefix` (e.g. /proc/<pid>/root), following symlinks
 * the way the host would (absolute targets restart at the host's root), so that an absolute symlink
 * in the host can never make the harness write to the machine's own file. Missing components are
 * kept as they are (to be created).
 */
export function resolveInRoot(rootPrefix: string, p: string, followLast = true): string {
  if (!p.startsWith("/")) throw new Error(`host path must be absolute: ${p}`);
  let rest = p.split("/").filter((c) => c && c !== ".");
  const done: string[] = [];
  let hops = 0;
  while (rest.length) {
    const c = rest.shift() as string;
    if (c === "..") {
      done.pop();
      continue;
    }
    const candidate = `${rootPrefix}/${[...done, c].join("/")}`;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(candidate);
    } catch {
      done.push(c);
      continue;
    }
    if (st.isSymbolicLink() && (rest.length > 0 || followLast)) {
      if (++hops > 40) throw new Error(`too many symlinks resolving ${p}`);
      const target = fs.readlinkSync(candidate);
      if (target.startsWith("/")) done.length = 0;
      rest = [...target.split("/").filter((x) => x && x !== "."), ...rest];
      continue;
    }
    done.push(c);
  }
  return `${rootPrefix}/${done.join("/")}`;
}

// ---------------------------------------------------------------------------------------------------
// Small utilities

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, "utf8");
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs a machine-side command synchronously; never throws. */
function sh(argv: string[]): ExecResult {
  const r = Bun.spawnSync(argv, {
    env: { PATH: TOOL_PATH },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode ?? 128, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function shOk(argv: string[]): string {
  const r = sh(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** True while `pid` exists and is not a zombie. */
function alive(pid: number): boolean {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

function startTime(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

function waitDeadSync(pids: number[], timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive)) {
    if (Date.now() > deadline) return false;
    Bun.sleepSync(10);
  }
  return true;
}

function netnsId(name: string): string | undefined {
  try {
    return `net:[${fs.statSync(`/run/netns/${name}`).ino}]`;
  } catch {
    return undefined;
  }
}

/** The inode-based id of the network namespace of `pid`, e.g. "net:[4026532301]". */
function pidNetns(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/** Kills `pid` with SIGKILL only if it still lives in network namespace `ns` (so it is ours). */
function killIfInNetns(pid: number | undefined, ns: string): void {
  if (!pid) return;
  const want = netnsId(ns);
  if (want && pidNetns(pid) === want) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

function mountsUnder(dir: string): string[] {
  const text = readText("/proc/self/mountinfo") ?? "";
  return parseMountinfo(text)
    .map((m) => m.mountPoint)
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

function umountAll(dir: string): void {
  // deepest first
  for (const m of mountsUnder(dir).sort((a, b) => b.length - a.length)) {
    if (sh(["umount", m]).code !== 0) sh(["umount", "-l", m]);
  }
}

// ---------------------------------------------------------------------------------------------------
// cgroups: every host gets its own cgroup (nested under the harness's) in every hierarchy and a
// cgroup namespace rooted there, so the hosts' systemds do not share /system.slice etc.

interface CgroupHierarchy {
  /** Mount point on the machine, e.g. /sys/fs/cgroup/memory. */
  mount: string;
  /** Name below /sys/fs/cgroup ("." for a pure cgroup2 machine). */
  dir: string;
  fsType: "cgroup" | "cgroup2";
  options: string;
  /** Our current cgroup in this hierarchy, e.g. /process_api/abc. */
  current: string;
}

function cgroupHierarchies(): CgroupHierarchy[] {
  const mi = readText("/proc/self/mountinfo") ?? "";
  const own = new Map<string, string>();
  for (const line of (readText("/proc/self/cgroup") ?? "").split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m) own.set(m[2] === "" ? "" : (m[2] ?? "").split(",").sort().join(","), m[3] ?? "/");
  }
  const out: CgroupHierarchy[] = [];
  for (const line of mi.split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const mountPoint = unescapeMount(left.split(" ")[4] ?? "");
    const [fsType, , superOpts = ""] = right.split(" ");
    if (fsType !== "cgroup" && fsType !== "cgroup2") continue;
    if (mountPoint !== "/sys/fs/cgroup" && path.dirname(mountPoint) !== "/sys/fs/cgroup") continue;
    let key = "";
    if (fsType === "cgroup") {
      const skip = new Set([
        "rw",
        "ro",
        "noprefix",
        "clone_children",
        "xattr",
        "cpuset_v2_mode",
        "favordynmods",
      ]);
      key = superOpts
        .split(",")
        .filter((o) => !skip.has(o) && !o.startsWith("release_agent="))
        .sort()
        .join(",");
    }
    const current = own.get(key);
    if (current === undefined) continue;
    out.push({
      mount: mountPoint,
      dir: mountPoint === "/sys/fs/cgroup" ? "." : path.basename(mountPoint),
      fsType,
      options: superOpts || "rw",
      current,
    });
  }
  return out;
}

function rmCgroupTree(dir: string): boolean {
  let ok = true;
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return true; // gone
  }
  for (const e of entries) if (e.isDirectory()) ok = rmCgroupTree(path.join(dir, e.name)) && ok;
  try {
    fs.rmdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") ok = false;
  }
  return ok;
}

function rmCgroupsSync(dirs: string[], timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = dirs.map(rmCgroupTree).every(Boolean);
    if (ok || Date.now() > deadline) return;
    Bun.sleepSync(20);
  }
}

// ---------------------------------------------------------------------------------------------------
// Clean-up registry: exit / SIGINT / SIGTERM

const live = new Set<Sandbox>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const cleanAll = () => {
    for (const sb of [...live]) {
      try {
        sb.destroySync();
      } catch (e) {
        console.error(`hashd sandbox ${sb.id}: clean-up failed: ${e}`);
      }
    }
  };
  process.on("exit", cleanAll);
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const) {
    process.on(sig, () => {
      cleanAll();
      process.exit(code);
    });
  }
}

interface OwnerRecord {
  pid: number;
  start: string | undefined;
  netns: string[];
  hosts: { name: string; netns: string; base: string }[];
  cgroups: string[];
}

/**
 * Removes what SIGKILLed harness processes left behind: sandboxes under /run/hashd-sandbox whose
 * owner process is gone. Host processes are killed only after checking they live in that sandbox's
 * network namespace. Returns the ids it removed.
 */
export function reapStale(): string[] {
  const removed: string[] = [];
  let ids: string[] = [];
  try {
    ids = fs.readdirSync(STATE_ROOT);
  } catch {
    return removed;
  }
  for (const id of ids) {
    const dir = path.join(STATE_ROOT, id);
    const text = readText(path.join(dir, "owner"));
    if (text === undefined) {
      // being created right now by someone else (owner is written first thing), or garbage
      try {
        if (Date.now() - fs.statSync(dir).mtimeMs < 60_000) continue;
      } catch {
        continue;
      }
    }
    let rec: OwnerRecord | undefined;
    try {
      rec = text ? (JSON.parse(text) as OwnerRecord) : undefined;
    } catch {
      rec = undefined;
    }
    if (rec && alive(rec.pid) && startTime(rec.pid) === rec.start) continue;
    const pids: number[] = [];
    for (const h of rec?.hosts ?? []) {
      const pid = Number.parseInt(readText(path.join(h.base, "pid")) ?? "", 10);
      if (pid > 0) {
        killIfInNetns(pid, h.netns);
        pids.push(pid);
      }
    }
    waitDeadSync(pids, 5000);
    rmCgroupsSync(rec?.cgroups ?? [], 5000);
    umountAll(dir);
    for (const ns of rec?.netns ?? []) if (fs.existsSync(`/run/netns/${ns}`)) sh(["ip", "netns", "del", ns]);
    if (mountsUnder(dir).length === 0) fs.rmSync(dir, { recursive: true, force: true });
    removed.push(id);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------------
// Sandbox

const HOST_NAME = /^[a-z][a-z0-9-]{0,19}$/;

export class Sandbox {
  readonly id: string;
  /** /run/hashd-sandbox/<id> */
  readonly dir: string;
  /** Network namespace holding the bridge br0. */
  readonly switchNetns: string;
  readonly #hosts = new Map<string, Host>();
  readonly #cgroups: CgroupHierarchy[];
  readonly #opts: Required<Pick<SandboxOptions, "diskSize" | "bootTimeoutMs">> & { mask: string[] };
  #netns: string[] = [];
  #destroyed = false;

  private constructor(id: string, opts: SandboxOptions) {
    this.id = id;
    this.dir = path.join(STATE_ROOT, id);
    this.switchNetns = `hd${id}-sw`;
    this.#cgroups = cgroupHierarchies();
    this.#opts = {
      diskSize: opts.diskSize ?? "2g",
      bootTimeoutMs: opts.bootTimeoutMs ?? 60_000,
      mask: [...MASKED_UNITS, ...(opts.mask ?? [])],
    };
    opts.hosts.forEach((name, i) => {
      const octet = FIRST_HOST_OCTET + i;
      this.#hosts.set(name, new Host(this, name, i, `${SUBNET}.${octet}`));
    });
  }

  /** Boots all hosts in parallel and waits until each is running with sshd and nix-daemon up. */
  static async create(opts: SandboxOptions): Promise<Sandbox> {
    preflight();
    if (opts.hosts.length === 0) throw new Error("hashd sandbox: no hosts");
    if (opts.hosts.length > 200) throw new Error("hashd sandbox: at most 200 hosts");
    for (const h of opts.hosts) {
      if (!HOST_NAME.test(h)) throw new Error(`hashd sandbox: bad host name ${JSON.stringify(h)}`);
    }
    if (new Set(opts.hosts).size !== opts.hosts.length)
      throw new Error("hashd sandbox: duplicate host names");
    reapStale();
    fs.mkdirSync(STATE_ROOT, { recursive: true, mode: 0o700 });
    let id = "";
    for (;;) {
      id = randomBytes(3).toString("hex");
      try {
        fs.mkdirSync(path.join(STATE_ROOT, id), { mode: 0o700 }); // claims the id
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
    }
    const sb = new Sandbox(id, opts);
    live.add(sb);
    installExitHandlers();
    try {
      sb.#writeOwner();
      sb.#setUpNetwork();
      for (const h of sb.#hosts.values()) h._prepareDisk();
      await Promise.all([...sb.#hosts.values()].map((h) => h.boot()));
    } catch (e) {
      await sb.destroy();
      throw e;
    }
    return sb;
  }

  host(name: string): Host {
    const h = this.#hosts.get(name);
    if (!h) throw new Error(`hashd sandbox ${this.id}: no host ${name}`);
    return h;
  }

  hosts(): Host[] {
    return [...this.#hosts.values()];
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Options shared with the hosts. @internal */
  get _opts() {
    return this.#opts;
  }

  /** Cgroup hierarchies of the harness. @internal */
  get _cgroups(): readonly CgroupHierarchy[] {
    return this.#cgroups;
  }

  /** /etc/hosts content for every host. @internal */
  _hostsFile(): string {
    const lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
    for (const h of this.#hosts.values()) lines.push(`${h.ip}\t${h.name}`);
    return `${lines.join("\n")}\n`;
  }

  #writeOwner(): void {
    const rec: OwnerRecord = {
      pid: process.pid,
      start: startTime(process.pid),
      netns: [this.switchNetns, ...[...this.#hosts.values()].map((h) => h.netns)],
      hosts: [...this.#hosts.values()].map((h) => ({ name: h.name, netns: h.netns, base: h.base })),
      cgroups: [...this.#hosts.values()].flatMap((h) => h._cgroupDirs()),
    };
    fs.writeFileSync(path.join(this.dir, "owner"), JSON.stringify(rec, null, 2));
  }

  #setUpNetwork(): void {
    const sw = this.switchNetns;
    shOk(["ip", "netns", "add", sw]);
    this.#netns.push(sw);
    shOk(["ip", "-n", sw, "link", "set", "lo", "up"]);
    shOk(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"]);
    shOk(["ip", "-n", sw, "link", "set", "br0", "up"]);
    for (const h of this.#hosts.values()) {
      shOk(["ip", "netns", "add", h.netns]);
      this.#netns.push(h.netns);
      shOk([
        "ip",
        "link",
        "add",
        h.veth,
        "netns",
        sw,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        h.netns,
      ]);
      shOk(["ip", "-n", sw, "link", "set", h.veth, "master", "br0", "up"]);
      shOk(["ip", "-n", h.netns, "addr", "add", `${h.ip}/24`, "dev", "eth0"]);
      shOk(["ip", "-n", h.netns, "link", "set", "eth0", "up"]);
      shOk(["ip", "-n", h.netns, "link", "set", "lo", "up"]);
    }
  }

  /**
   * Creates one ed25519 key pair and installs it as root's key on every host, with authorized_keys
   * and a known_hosts listing every host's real host key (by name and IP), so `ssh root@<other>`
   * works between hosts without prompts.
   */
  async enableRootSsh(): Promise<void> {
    const hosts = this.hosts();
    const first = hosts[0] as Host;
    await first.run(["rm", "-f", "/tmp/hashd-sandbox-id", "/tmp/hashd-sandbox-id.pub"]);
    await first.run([
      "ssh-keygen",
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      `hashd-sandbox-${this.id}`,
      "-f",
      "/tmp/hashd-sandbox-id",
    ]);
    const priv = await first.readFile("/tmp/hashd-sandbox-id");
    const pub = await first.readFile("/tmp/hashd-sandbox-id.pub");
    await first.run(["rm", "-f", "/tmp/hashd-sandbox-id", "/tmp/hashd-sandbox-id.pub"]);
    const known: string[] = [];
    for (const h of hosts) {
      const hostKey = (await h.readFile("/etc/ssh/ssh_host_ed25519_key.pub")).trim().split(/\s+/);
      known.push(`${h.name},${h.ip} ${hostKey[0]} ${hostKey[1]}`);
    }
    await Promise.all(
      hosts.map(async (h) => {
        await h.run(["install", "-d", "-m", "700", "/root/.ssh"]);
        await h.writeFile("/root/.ssh/id_ed25519", priv, 0o600);
        await h.writeFile("/root/.ssh/id_ed25519.pub", pub, 0o644);
        let auth = "";
        try {
          auth = await h.readFile("/root/.ssh/authorized_keys");
        } catch {
          /* none yet */
        }
        if (!auth.includes(pub.trim()))
          await h.writeFile("/root/.ssh/authorized_keys", `${auth}${pub.trim()}\n`, 0o600);
        await h.writeFile("/root/.ssh/known_hosts", `${known.join("\n")}\n`, 0o644);
      }),
    );
  }

  /** Kills every host, deletes our namespaces, cgroups, mounts and directories. Idempotent. */
  async destroy(): Promise<void> {
    this.destroySync();
  }

  /** Synchronous destroy (used by the exit handlers). Idempotent. */
  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const errors: string[] = [];
    const hosts = this.hosts();
    for (const h of hosts) h._kill();
    const pids = hosts.flatMap((h) => h._pids());
    if (!waitDeadSync(pids, 5000)) {
      for (const h of hosts) h._killBootProcess();
      if (!waitDeadSync(pids, 5000)) errors.push(`processes still alive: ${pids.filter(alive).join(" ")}`);
    }
    for (const h of hosts) h._markDown();
    rmCgroupsSync(
      hosts.flatMap((h) => h._cgroupDirs()),
      5000,
    );
    umountAll(this.dir);
    for (const ns of this.#netns.reverse()) {
      const r = sh(["ip", "netns", "del", ns]);
      if (r.code !== 0 && fs.existsSync(`/run/netns/${ns}`))
        errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
    }
    this.#netns = [];
    const left = mountsUnder(this.dir);
    if (left.length === 0) fs.rmSync(this.dir, { recursive: true, force: true });
    else errors.push(`mounts left under ${this.dir}: ${left.join(" ")}`);
    live.delete(this);
    if (errors.length)
      throw new Error(`hashd sandbox ${this.id}: clean-up incomplete:\n  ${errors.join("\n  ")}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Host

export class Host {
  readonly name: string;
  readonly ip: string;
  /** Network namespace name (hd<id>-<name>). */
  readonly netns: string;
  /** Bridge-side veth name in the switch namespace. */
  readonly veth: string;
  /** The host's disk on the machine: /run/hashd-sandbox/<id>/<name> (a tmpfs). */
  readonly base: string;
  readonly #sb: Sandbox;
  #pid: number | undefined;
  #proc: Subprocess | undefined;
  #booting: Promise<void> | undefined;

  /** @internal */
  constructor(sb: Sandbox, name: string, index: number, ip: string) {
    this.#sb = sb;
    this.name = name;
    this.ip = ip;
    this.netns = `hd${sb.id}-${name}`;
    this.veth = `vh${sb.id}${index}`;
    this.base = path.join(sb.dir, name);
  }

  /** Current PID (as the machine sees it) of this host's systemd; throws while the host is down. */
  get pid(): number {
    if (this.#pid === undefined) throw new Error(`host ${this.name} is down`);
    return this.#pid;
  }

  get running(): boolean {
    return this.#pid !== undefined;
  }

  /** @internal */
  _cgroupDirs(): string[] {
    return this.#sb._cgroups.map((c) => path.join(c.mount, c.current, `hashd-${this.#sb.id}-${this.name}`));
  }

  /** @internal Mounts the host's disk tmpfs and writes its config. */
  _prepareDisk(): void {
    fs.mkdirSync(this.base, { mode: 0o700 });
    shOk([
      "mount",
      "-t",
      "tmpfs",
      "-o",
      `mode=700,size=${this.#sb._opts.diskSize}`,
      "hashd-sandbox",
      this.base,
    ]);
    for (const d of ["upper", "work", "nix", "root", "config"]) fs.mkdirSync(path.join(this.base, d));
    fs.writeFileSync(path.join(this.base, "config/hostname"), `${this.name}\n`);
    fs.writeFileSync(path.join(this.base, "config/hosts"), this.#sb._hostsFile());
  }

  /**
   * @internal SIGKILL our systemd (only if it is still ours). Its parent, the unshare process,
   * reaps it and exits by itself; killing that first would leave systemd's zombie to the machine's
   * init, and the host's pid namespace would only go away once that init reaps it.
   */
  _kill(): void {
    killIfInNetns(this.#pid, this.netns);
  }

  /** @internal Last resort when the unshare process did not exit after its systemd died. */
  _killBootProcess(): void {
    const p = this.#proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      try {
        p.kill("SIGKILL");
      } catch {
        /* gone */
      }
    }
  }

  /** @internal */
  _pids(): number[] {
    const out: number[] = [];
    if (this.#pid) out.push(this.#pid);
    if (this.#proc?.pid) out.push(this.#proc.pid);
    return out;
  }

  /** @internal */
  _markDown(): void {
    this.#pid = undefined;
    this.#proc = undefined;
  }

  #createCgroups(): string[] {
    const dirs: string[] = [];
    for (const c of this.#sb._cgroups) {
      const parent = path.join(c.mount, c.current);
      const dir = path.join(parent, `hashd-${this.#sb.id}-${this.name}`);
      fs.mkdirSync(dir, { recursive: true });
      if (c.fsType === "cgroup" && fs.existsSync(path.join(dir, "cpuset.cpus"))) {
        for (const f of ["cpuset.cpus", "cpuset.mems"]) {
          if ((readText(path.join(dir, f)) ?? "").trim() === "") {
            fs.writeFileSync(path.join(dir, f), readText(path.join(parent, f)) ?? "");
          }
        }
      }
      dirs.push(dir);
    }
    return dirs;
  }

  #bootEnv(mode: "outer" | "outer-dryrun"): Record<string, string> {
    return {
      PATH: TOOL_PATH,
      HASHD_SB_BASE: this.base,
      HASHD_SB_HOST: this.name,
      HASHD_SB_OUTER_MNT: fs.readlinkSync("/proc/self/ns/mnt"),
      HASHD_SB_CGROUPS: mode === "outer" ? this.#createCgroups().join(" ") : "",
      HASHD_SB_CGMOUNTS: this.#sb._cgroups.map((c) => `${c.dir}:${c.fsType}:${c.options}`).join(" "),
      HASHD_SB_MASK: this.#sb._opts.mask.join(" "),
    };
  }

  /** Boots the host (its disk, i.e. overlay upper layer and /nix, is kept from earlier boots). */
  async boot(): Promise<void> {
    if (this.#sb.destroyed) throw new Error(`sandbox ${this.#sb.id} is destroyed`);
    if (this.#booting) return this.#booting;
    if (this.#pid !== undefined) throw new Error(`host ${this.name} is already running`);
    this.#booting = this.#boot().finally(() => {
      this.#booting = undefined;
    });
    return this.#booting;
  }

  async #boot(): Promise<void> {
    const started = Date.now();
    const timeoutMs = this.#sb._opts.bootTimeoutMs;
    const pidFile = path.join(this.base, "pid.tmp");
    fs.rmSync(pidFile, { force: true });
    fs.rmSync(path.join(this.base, "pid"), { force: true });
    const logPath = path.join(this.base, "boot.log");
    const log = fs.openSync(logPath, "a");
    fs.writeSync(log, `--- boot ${new Date().toISOString()}\n`);
    let proc: Subprocess;
    try {
      // setpriv --pdeathsig: if the harness dies (even by SIGKILL), unshare gets SIGKILL, and its
      // --kill-child takes systemd (and with it the whole host) down too.
      proc = Bun.spawn(
        [
          "/usr/bin/setpriv",
          "--pdeathsig",
          "KILL",
          "/usr/bin/setsid",
          "/usr/bin/nsenter",
          `--net=/run/netns/${this.netns}`,
          "/bin/bash",
          BOOT_SH,
          "outer",
        ],
        { env: this.#bootEnv("outer"), stdin: "ignore", stdout: log, stderr: log },
      );
    } finally {
      fs.closeSync(log);
    }
    this.#proc = proc;
    // systemd may also end on its own (`systemctl poweroff` in the host): the host is then down.
    void proc.exited.then(() => {
      if (this.#proc !== proc) return;
      this._markDown();
      for (const d of this._cgroupDirs()) rmCgroupTree(d);
    });
    // Wait for boot.sh to report systemd's pid (written just before it execs systemd).
    let pid: number | undefined;
    while (pid === undefined) {
      const text = readText(pidFile);
      if (text?.endsWith("\n")) pid = Number.parseInt(text, 10);
      else if (proc.exitCode !== null || proc.signalCode !== null) {
        this.#proc = undefined;
        throw new Error(
          `host ${this.name}: boot failed (${proc.exitCode ?? proc.signalCode}):\n${this.bootLog()}`,
        );
      } else if (Date.now() - started > timeoutMs) {
        this.#proc = undefined;
        proc.kill("SIGKILL");
        throw new Error(`host ${this.name}: boot script did not start systemd in time:\n${this.bootLog()}`);
      } else await sleep(10);
    }
    fs.renameSync(pidFile, path.join(this.base, "pid"));
    this.#pid = pid;
    // Verify from outside too (boot.sh already refused unsafe roots before exec'ing systemd).
    const problems = checkMountinfo(readText(`/proc/${pid}/mountinfo`) ?? "");
    if (problems.length) {
      await this.crash();
      throw new Error(`host ${this.name}: unsafe mount table after boot, killed it: ${problems.join("; ")}`);
    }
    await this.#waitRunning(started + timeoutMs);
  }

  async #waitRunning(deadline: number): Promise<void> {
    let state = "";
    for (;;) {
      const r = await this.exec(["systemctl", "is-system-running"], { timeoutMs: 10_000 });
      state = r.stdout.trim();
      if (state === "running" || state === "degraded") break;
      if (!this.running) throw new Error(`host ${this.name} died while booting:\n${this.bootLog()}`);
      if (Date.now() > deadline) {
        const jobs = await this.exec(["systemctl", "list-jobs", "--no-pager"]);
        throw new Error(
          `host ${this.name}: not running in time (state ${state || r.stderr.trim()}):\n${jobs.stdout}`,
        );
      }
      await sleep(POLL_MS);
    }
    if (state === "degraded") {
      const failed = await this.exec(["systemctl", "--failed", "--no-legend", "--plain", "--no-pager"]);
      console.warn(`hashd sandbox: host ${this.name} is degraded; failed units:\n${failed.stdout}`);
    }
    for (;;) {
      const r = await this.exec(["systemctl", "is-active", "ssh.service", "nix-daemon.socket"]);
      if (r.code === 0) break;
      if (Date.now() > deadline || /failed/.test(r.stdout)) {
        const st = await this.exec(["systemctl", "status", "--no-pager", "ssh.service", "nix-daemon.socket"]);
        throw new Error(`host ${this.name}: sshd/nix-daemon not up:\n${st.stdout}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** The host's boot.sh output (all boots). */
  bootLog(): string {
    return readText(path.join(this.base, "boot.log")) ?? "";
  }

  /** Kills systemd with SIGKILL: every process of the host dies; its network namespace stays. */
  async crash(): Promise<void> {
    if (this.#booting) await this.#booting.catch(() => undefined);
    const pids = this._pids();
    this._kill();
    let deadline = Date.now() + 5000;
    while (pids.some(alive)) {
      if (Date.now() > deadline) {
        if (this.#proc === undefined)
          throw new Error(`host ${this.name}: processes ${pids.join(" ")} did not die`);
        this._killBootProcess();
        this.#proc = undefined;
        deadline = Date.now() + 5000;
      }
      await sleep(10);
    }
    this._markDown();
    const dirs = this._cgroupDirs();
    const cgDeadline = Date.now() + 5000;
    while (!dirs.map(rmCgroupTree).every(Boolean)) {
      if (Date.now() > cgDeadline)
        throw new Error(`host ${this.name}: cannot remove cgroups ${dirs.join(" ")}`);
      await sleep(20);
    }
  }

  /** crash() + boot(): /run and /tmp start empty; /etc, /var, /root, ... and /nix persist. */
  async reboot(): Promise<void> {
    await this.crash();
    await this.boot();
  }

  #nsenterArgv(argv: string[], pdeathsig: "KILL" | "TERM"): string[] {
    if (argv.length === 0) throw new Error("empty argv");
    return [
      "/usr/bin/nsenter",
      "-t",
      String(this.pid),
      "-a",
      "--",
      "/usr/bin/setpriv",
      "--pdeathsig",
      pdeathsig,
      "--",
      ...argv,
    ];
  }

  #withCwd(argv: string[], cwd: string | undefined): string[] {
    // nsenter -a starts in the host's /; change directory with env -C (coreutils >= 8.28).
    return cwd ? ["/usr/bin/env", "-C", cwd, ...argv] : argv;
  }

  /** Runs argv (no shell) in all of the host's namespaces. Never throws on a non-zero exit. */
  async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const input = typeof opts.input === "string" ? new TextEncoder().encode(opts.input) : opts.input;
    const proc = Bun.spawn(this.#nsenterArgv(this.#withCwd(argv, opts.cwd), "KILL"), {
      env: { ...HOST_ENV, ...opts.env },
      stdin: input ?? "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    let timedOut = false;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    const timer = setTimeout(() => {
      timedOut = true;
      killInner(proc, "SIGKILL");
    }, timeoutMs);
    try {
      const [stdout, stderr] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
      ]);
      await proc.exited;
      const code = proc.exitCode ?? 128 + signalNumber(proc.signalCode);
      return {
        code,
        stdout,
        stderr: timedOut ? `${stderr}\n[hashd sandbox] killed after ${timeoutMs} ms` : stderr,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Like exec, but throws (with stderr) on a non-zero exit; returns stdout. */
  async run(argv: string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(argv, opts);
    if (r.code !== 0) {
      throw new Error(
        `${this.name}: ${argv.join(" ")} exited with ${r.code}:\n${r.stderr.trim() || r.stdout.trim()}`,
      );
    }
    return r.stdout;
  }

  /**
   * Starts a long-running process in the host. Killing the returned process (SIGTERM, SIGKILL)
   * sends SIGTERM to the command in the host (parent-death signal); the host's crash kills it too.
   */
  spawn(argv: string[], opts: SpawnOptions = {}): Subprocess {
    const proc = Bun.spawn(this.#nsenterArgv(this.#withCwd(argv, opts.cwd), "TERM"), {
      env: { ...HOST_ENV, ...opts.env },
      stdin: opts.stdin ?? "ignore",
      stdout: opts.stdout ?? "pipe",
      stderr: opts.stderr ?? "pipe",
    });
    // proc.kill(sig) signals the command in the host, so nsenter reaps it and exits with its status.
    const nsenterKill = proc.kill.bind(proc);
    proc.kill = (sig?: number | NodeJS.Signals) => {
      if (!signalChildren(proc.pid, sig ?? "SIGTERM")) nsenterKill(sig);
    };
    return proc;
  }

  /** Path on the machine for `p` inside the running host (symlinks resolved inside the host). */
  hostPath(p: string, followLast = true): string {
    return resolveInRoot(`/proc/${this.pid}/root`, p, followLast);
  }

  /** Writes a file into the host through /proc/<pid>/root (parents created; default mode 644). */
  async writeFile(p: string, content: string | Uint8Array, mode = 0o644): Promise<void> {
    const target = this.hostPath(p);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    await Bun.write(target, content);
    fs.chmodSync(target, mode);
  }

  async readFile(p: string): Promise<string> {
    return fs.readFileSync(this.hostPath(p), "utf8");
  }

  /** Copies a file from the machine into the host, mode 755. */
  async installBinary(src: string, dest: string): Promise<void> {
    const target = this.hostPath(dest);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.rmSync(target, { force: true }); // a running binary cannot be overwritten in place
    fs.copyFileSync(src, target);
    fs.chmodSync(target, 0o755);
  }

  /** Takes the host's port on the bridge down (partition from every other host) or up again. */
  async setLinkUp(up: boolean): Promise<void> {
    shOk(["ip", "-n", this.#sb.switchNetns, "link", "set", this.veth, up ? "up" : "down"]);
  }

  // ------------------------------------------------------------------------------------- Nix helpers

  /**
   * Builds a Nix expression (no nixpkgs; use builtins.derivation with builder "/bin/sh" and
   * `export PATH=/usr/bin:/bin` in the script) through the host's nix-daemon. Returns the output path.
   */
  async nixBuild(expr: string): Promise<string> {
    const file = `/tmp/hashd-sandbox-${randomBytes(6).toString("hex")}.nix`;
    await this.writeFile(file, expr);
    try {
      const out = await this.run(["nix-build", "--no-out-link", file], { env: { NIX_REMOTE: "daemon" } });
      return out.trim();
    } finally {
      await this.exec(["rm", "-f", file]);
    }
  }

  /** Generates a binary cache signing key pair in /etc/nix/keys/<name>.{sec,pub}. */
  async generateSigningKey(name: string): Promise<{ secretKeyFile: string; publicKey: string }> {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`bad key name ${name}`);
    const secretKeyFile = `/etc/nix/keys/${name}.sec`;
    const publicKeyFile = `/etc/nix/keys/${name}.pub`;
    await this.run(["install", "-d", "-m", "700", "/etc/nix/keys"]);
    await this.run(["nix-store", "--generate-binary-cache-key", name, secretKeyFile, publicKeyFile]);
    return { secretKeyFile, publicKey: (await this.readFile(publicKeyFile)).trim() };
  }

  /** Signs `storePath` and its closure with the key in `secretKeyFile` (a path in the host). */
  async sign(storePath: string, secretKeyFile: string): Promise<void> {
    await this.run(["nix", "store", "sign", "-r", "-k", secretKeyFile, storePath]);
  }

  /** Adds keys to trusted-public-keys in the host's /etc/nix/nix.conf and restarts nix-daemon. */
  async trustPublicKeys(keys: string[]): Promise<void> {
    const conf = await this.readFile("/etc/nix/nix.conf");
    const have: string[] = [];
    const lines = conf.split("\n").filter((l) => {
      const m = /^\s*trusted-public-keys\s*=(.*)$/.exec(l);
      if (m) have.push(...(m[1] ?? "").trim().split(/\s+/).filter(Boolean));
      return !m;
    });
    const all = [...new Set([...have, ...keys])];
    while (lines.length && lines[lines.length - 1] === "") lines.pop();
    lines.push(`trusted-public-keys = ${all.join(" ")}`, "");
    await this.writeFile("/etc/nix/nix.conf", lines.join("\n"));
    await this.run(["systemctl", "restart", "nix-daemon.service"]);
  }
}

/** Pids whose parent is `ppid` (scans /proc). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const stat = readText(`/proc/${e}/stat`);
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === ppid) out.push(Number(e));
  }
  return out;
}

/** Sends `sig` to the children of nsenter `pid` (the command in the host); false if there are none. */
function signalChildren(pid: number, sig: number | NodeJS.Signals): boolean {
  const kids = childrenOf(pid);
  for (const k of kids) {
    try {
      process.kill(k, sig);
    } catch {
      /* gone */
    }
  }
  return kids.length > 0;
}

/**
 * Kills the command nsenter runs in the host (nsenter then exits with its status). Killing nsenter
 * itself would work too (parent-death signal), but its orphaned child would be reparented to the
 * machine's init, which reaps zombies only every few seconds.
 */
function killInner(proc: Subprocess, sig: NodeJS.Signals): void {
  if (!signalChildren(proc.pid, sig)) proc.kill(sig);
  setTimeout(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  }, 2000).unref();
}

function signalNumber(sig: number | string | null | undefined): number {
  if (typeof sig === "number") return sig;
  const n = sig ? (osConstants.signals as Record<string, number>)[sig] : undefined;
  return n ?? 0;
}

// ---------------------------------------------------------------------------------------------------
// Dry run of boot.sh for the safety tests: builds a host root in throwaway namespaces (no network
// namespace, no cgroups) and stops right before where it would exec systemd.

export async function dryRunBoot(fault?: "skip-tmp"): Promise<ExecResult> {
  preflight();
  const id = `dry${randomBytes(3).toString("hex")}`;
  const dir = path.join(STATE_ROOT, id);
  const base = path.join(dir, "h");
  fs.mkdirSync(base, { recursive: true, mode: 0o700 });
  try {
    shOk(["mount", "-t", "tmpfs", "-o", "mode=700,size=64m", "hashd-sandbox", base]);
    for (const d of ["upper", "work", "nix", "root", "config"]) fs.mkdirSync(path.join(base, d));
    fs.writeFileSync(path.join(base, "config/hostname"), "dry\n");
    fs.writeFileSync(path.join(base, "config/hosts"), "127.0.0.1\tlocalhost\n");
    const env: Record<string, string> = {
      PATH: TOOL_PATH,
      HASHD_SB_BASE: base,
      HASHD_SB_HOST: "dry",
      HASHD_SB_OUTER_MNT: fs.readlinkSync("/proc/self/ns/mnt"),
      HASHD_SB_CGROUPS: "",
      HASHD_SB_CGMOUNTS: cgroupHierarchies()
        .map((c) => `${c.dir}:${c.fsType}:${c.options}`)
        .join(" "),
      HASHD_SB_MASK: "",
    };
    if (fault) env.HASHD_SB_FAULT = fault;
    const proc = Bun.spawn(
      ["/usr/bin/setpriv", "--pdeathsig", "KILL", "/bin/bash", BOOT_SH, "outer-dryrun"],
      {
        env,
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [stdout, stderr] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ]);
    return { code: await proc.exited, stdout, stderr };
  } finally {
    umountAll(dir);
    if (mountsUnder(dir).length === 0) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `boot.sh check` (the safety check alone) in the harness's own namespaces: must refuse. */
export async function checkInMachineNamespace(): Promise<ExecResult> {
  const proc = Bun.spawn(["/bin/bash", BOOT_SH, "check"], {
    env: {
      PATH: TOOL_PATH,
      HASHD_SB_HOST: "machine",
      HASHD_SB_OUTER_MNT: fs.readlinkSync("/proc/self/ns/mnt"),
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  return { code: await proc.exited, stdout, stderr };
}
