// A node:test reporter (`--test-reporter=./scripts/file-times-reporter.mjs`) that prints, once the
// run ends, how long each test file took, slowest first. Files run one at a time
// (scripts/run-tests.mjs), so a file's time is measured from the previous file's last event to its
// own last event (wall clock, start-up and hooks included).
export default async function* fileTimes(source) {
  const started = Date.now();
  let mark = started;
  const times = new Map();
  for await (const event of source) {
    const file = event.data?.file;
    if (!file || !event.type.startsWith("test:")) continue;
    const now = Date.now();
    times.set(file, (times.get(file) ?? 0) + (now - mark));
    mark = now;
  }
  const rows = [...times].sort((a, b) => b[1] - a[1]);
  const cwd = process.cwd() + "/";
  let out = `\nTest files by wall time (total ${((Date.now() - started) / 1000).toFixed(1)} s):\n`;
  for (const [file, ms] of rows) out += `  ${(ms / 1000).toFixed(1).padStart(6)} s  ${file.startsWith(cwd) ? file.slice(cwd.length) : file}\n`;
  yield out;
}
