/**
 * `npx tsx test/host/build-root-cli.ts`: builds (or finds) the real-host tier's cached Debian root, as .ci/run does
 * before the tests so the tier itself only boots it. Prints one JSON line: key, directory, built or reused, seconds.
 * Exits 0 with `"skipped"` when this machine cannot build it (not root, or debootstrap missing), saying why.
 */
import { hostTierAvailability } from "./availability.js";
import { ensureHostRoot } from "./root-image.js";

const availability = await hostTierAvailability({ needRoot: false });
if (!availability.ok) {
  console.log(JSON.stringify({ skipped: availability.reason }));
} else {
  const started = Date.now();
  const root = await ensureHostRoot({ log: (line) => console.error(line) });
  console.log(
    JSON.stringify({
      key: root!.key,
      dir: root!.dir,
      built: root!.built,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      containerd: root!.manifest.containerd.version,
      modules: root!.manifest.modules,
    }),
  );
}
