import type { Phase, ProgressSink } from "./deploy.ts";
import { seconds } from "./result.ts";

/** One line per host (and one while building): what it is doing and for how long. */
interface Row {
  label: string;
  phase: Phase | "build";
  detail?: string;
  /** when the row left `waiting` */
  startedAt?: number;
  /** when it reached ready or failed */
  endedAt?: number;
}

export interface Terminal {
  write(text: string): unknown;
  columns?: number;
}

const CSI = "\x1b[";
const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const DONE: ReadonlySet<string> = new Set(["ready", "failed"]);

/**
 * Live per-host lines on a terminal, redrawn in place: the cursor moves up over the block and
 * each line is cleared and written again (ECMA-48 CUU and EL). A dozen lines of ANSI do what a
 * task-list library would, without its dependencies or its opinions on output; the renderer is a
 * pure function of rows and time, so it is tested without a terminal. stop() erases the block: the
 * final summary is printed by main() like any command's output.
 */
export class TtyProgress implements ProgressSink {
  private readonly rows: Row[] = [];
  private drawn = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private title = "";

  constructor(
    private readonly out: Terminal,
    private readonly color = !process.env.NO_COLOR,
    private readonly now: () => number = Date.now,
  ) {}

  /** Shows the block (again, with a new title) and keeps the elapsed times ticking. */
  start(title: string): void {
    this.title = title;
    this.draw();
    this.timer ??= setInterval(() => this.draw(), 100);
  }

  update(label: string, phase: Phase | "build", detail?: string): void {
    let row = this.rows.find((r) => r.label === label);
    if (!row) {
      row = { label, phase };
      this.rows.push(row);
    }
    const t = this.now();
    if (phase !== "waiting") row.startedAt ??= t;
    if (DONE.has(phase)) row.endedAt = t;
    else row.endedAt = undefined;
    row.phase = phase;
    row.detail = detail;
    this.draw();
  }

  /** Removes a row (the build line once the build is done). */
  remove(label: string): void {
    const i = this.rows.findIndex((r) => r.label === label);
    if (i >= 0) this.rows.splice(i, 1);
    this.draw();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.drawn) this.out.write(`\x1b[${this.drawn}A\r\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    // a pseudo-terminal nobody sized (script(1), some CI runners) reports 0 columns
    const width = Math.max(20, (this.out.columns || 100) - 1);
    const lines = renderProgress(this.title, this.rows, this.now(), this.color).map((l) =>
      truncate(l, width),
    );
    let text = this.drawn ? `\x1b[${this.drawn}A` : "";
    for (const line of lines) text += `\r\x1b[2K${line}\n`;
    // lines only ever get added, except by remove(): clear what is left below
    if (lines.length < this.drawn) text += "\x1b[J";
    this.out.write(text);
    this.drawn = lines.length;
  }
}

export function renderProgress(title: string, rows: Row[], now: number, color: boolean): string[] {
  const width = Math.max(0, ...rows.map((r) => r.label.length));
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const frame = SPINNER[Math.floor(now / 100) % SPINNER.length] ?? "-";
  return [
    title,
    ...rows.map((r) => {
      const mark =
        r.phase === "ready"
          ? paint("32", "✓")
          : r.phase === "failed"
            ? paint("31", "✗")
            : r.phase === "waiting"
              ? " "
              : frame;
      const phase = r.phase === "failed" ? paint("31", r.phase.padEnd(8)) : r.phase.padEnd(8);
      const elapsed = r.startedAt === undefined ? "" : seconds((r.endedAt ?? now) - r.startedAt).padStart(6);
      const detail = r.detail ? `  ${paint("2", r.detail)}` : "";
      return `  ${mark} ${r.label.padEnd(width)}  ${phase} ${elapsed}${detail}`.trimEnd();
    }),
  ];
}

/** Cuts a line to the terminal width (a wrapped line would break the cursor-up arithmetic). */
export function truncate(line: string, width: number): string {
  let visible = 0;
  let out = "";
  for (let i = 0; i < line.length; i++) {
    if (line.startsWith(CSI, i)) {
      // an SGR sequence (ESC [ digits ; m) takes no room on the screen
      const end = line.indexOf("m", i);
      out += line.slice(i, end + 1);
      i = end;
      continue;
    }
    if (visible >= width) break;
    out += line[i];
    visible++;
  }
  return visible >= width && line.includes(CSI) ? `${out}\x1b[0m` : out;
}
