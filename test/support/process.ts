import { type ChildProcess, spawn } from "node:child_process";
import { onTestFinished } from "vitest";

export interface Spawned {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the first match of `pattern` in stdout, or rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

/**
 * Run a real child process and watch its output. It is killed when the test that started it ends, passed or
 * failed, so a failed test leaves no process behind to load the machine or hold connections.
 */
export function spawnProcess(
  command: string,
  args: string[],
  options: { cwd?: string; env: NodeJS.ProcessEnv },
): Spawned {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return {
    child,
    exited,
    output: () => `${stdout}\n--- stderr ---\n${stderr}`,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const check = () => {
          const match = stdout.match(pattern);
          if (match) return resolve(match);
          if (child.exitCode !== null || Date.now() - started > timeoutMs) {
            return reject(new Error(`no ${pattern} in output:\n${stdout}\n${stderr}`));
          }
          setTimeout(check, 50);
        };
        check();
      });
    },
  };
}

/** The environment of this process without the variables that would point Herald at a server. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("HERALD_") || name === "DATABASE_URL" || name === "PORT") delete env[name];
  }
  return { ...env, ...extra };
}
