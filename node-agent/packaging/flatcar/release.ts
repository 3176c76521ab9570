/**
 * The committed flexnode.bu is an example with placeholders; a build renders a copy that names the image it just
 * produced (version and architecture in the file name) and carries that image's sha512, so only the URLs and the
 * enrolment token remain to fill in. The YAML document is edited in place, keeping its comments.
 */
import * as YAML from "yaml";

/** flexnode-agent-<version>-<arch>.raw: the versioned name the image is downloaded under. */
export const IMAGE_FILE_PATTERN = /flexnode-agent-[^/]+\.raw$/;

export function imageFileName(version: string, arch: string): string {
  return `flexnode-agent-${version}-${arch}.raw`;
}

export function renderRelease(butaneText: string, options: { imageFile: string; sha512: string }): string {
  const doc = YAML.parseDocument(butaneText, { version: "1.1" });
  const files = doc.getIn(["storage", "files"]);
  let images = 0;
  if (YAML.isSeq(files)) {
    files.items.forEach((_item, i) => {
      const path = doc.getIn(["storage", "files", i, "path"]);
      if (typeof path !== "string" || !IMAGE_FILE_PATTERN.test(path)) return;
      images++;
      doc.setIn(["storage", "files", i, "path"], path.replace(IMAGE_FILE_PATTERN, options.imageFile));
      const source = doc.getIn(["storage", "files", i, "contents", "source"]);
      if (typeof source === "string") doc.setIn(["storage", "files", i, "contents", "source"], source.replace(IMAGE_FILE_PATTERN, options.imageFile));
      doc.setIn(["storage", "files", i, "contents", "verification", "hash"], `sha512-${options.sha512}`);
    });
  }
  const links = doc.getIn(["storage", "links"]);
  if (YAML.isSeq(links)) {
    links.items.forEach((_item, i) => {
      const target = doc.getIn(["storage", "links", i, "target"]);
      if (typeof target === "string" && IMAGE_FILE_PATTERN.test(target))
        doc.setIn(["storage", "links", i, "target"], target.replace(IMAGE_FILE_PATTERN, options.imageFile));
    });
  }
  if (images !== 1) throw new Error(`expected one storage.files entry for the sysext image (flexnode-agent-*.raw), found ${images}`);
  return doc.toString({ lineWidth: 0 });
}
