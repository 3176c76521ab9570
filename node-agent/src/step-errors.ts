/**
 * Failures of a step on the host, each with a stable `code` and whether retrying the same step can help. run-step.ts
 * turns them into the signed result's `error`; anything else thrown becomes `io_error` or `internal`.
 */
export abstract class StepFailure extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Params that do not match the kind's schema; nothing was changed. */
export class InvalidParamsError extends StepFailure {
  readonly code = "invalid_params";
  readonly retryable = false;
}

/** A write that would land under /usr, directly or through a symlink. */
export class UsrWriteRefusedError extends StepFailure {
  readonly code = "usr_write_refused";
  readonly retryable = false;
}

/** A path that leaves the root through `..` or a symlink, or resolves outside /etc, /var and /opt. */
export class PathNotAllowedError extends StepFailure {
  readonly code = "path_not_allowed";
  readonly retryable = false;
}

/** A recorded path whose parent is now a symlink: an undo refuses to act through it (it would act elsewhere). */
export class SymlinkInPathError extends StepFailure {
  readonly code = "symlink_in_path";
  readonly retryable = false;
}

/** The host state is not what the step needs (a directory where a file goes, a masked or unknown unit…). */
export class PreconditionFailedError extends StepFailure {
  readonly code: string;
  readonly retryable = false;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export class HostCommandFailedError extends StepFailure {
  readonly code = "host_command_failed";
  readonly retryable = true;
}

export class DownloadFailedError extends StepFailure {
  readonly code = "download_failed";

  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The bytes served are not the pinned artifact: nothing is placed, and a retry of the same URL will not help. */
export class ArtifactDigestMismatchError extends StepFailure {
  readonly code = "artifact_digest_mismatch";
  readonly retryable = false;
}

/** An archive entry that is absolute, climbs out with `..`, links outside the destination or is not a plain file/dir/link. */
export class UnsafeArchiveError extends StepFailure {
  readonly code = "unsafe_archive";
  readonly retryable = false;
}

/** An archive that would unpack more bytes or entries than the agent's caps allow; nothing is unpacked. */
export class ArchiveTooLargeError extends StepFailure {
  readonly code = "archive_too_large";
  readonly retryable = false;
}

export class WaitTimeoutError extends StepFailure {
  readonly code = "wait_timeout";
  readonly retryable = true;
}

export class SecretUnavailableError extends StepFailure {
  readonly code = "secret_unavailable";
  readonly retryable = true;
}

export class PreflightFailedError extends StepFailure {
  readonly code = "preflight_failed";
  readonly retryable = false;
}

/** Some recorded changes could not be undone; they stay in the manifest for the next reset. */
export class ResetIncompleteError extends StepFailure {
  readonly code = "reset_incomplete";
  readonly retryable = true;
}

/** The manifest file does not parse: the agent refuses to guess what it changed, and never overwrites it. */
export class ManifestCorruptError extends StepFailure {
  readonly code = "manifest_corrupt";
  readonly retryable = false;
}
