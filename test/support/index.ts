/**
 * Public surface of the shared test support: what more than one stand-in, test tier or benchmark needs, kept here
 * once so no stand-in reaches into another's files. Depends on no stand-in.
 */
export { ManualClock, WallClock, type Clock } from "./clock.js";
export { defaultFaultCode, FaultInjector, type FaultSpec, type InjectedFault } from "./faults.js";
export { stopChild } from "./child-process.js";
export { closeServer, flatHeaders, listenOnLoopback, readBody } from "./http.js";
export { normalisePath } from "./request-path.js";
export { seededRandom } from "./seeded-random.js";
export { caIssuedCertificate, selfSignedCertificate, type TlsCertificate } from "./tls.js";
export { byteRange, type ByteRangeAnswer } from "./byte-range.js";
export { startArtifactMirror, type ArtifactMirror, type ArtifactMirrorOptions, type MirrorRequest } from "./artifact-mirror.js";
