/** Public surface of the Kubernetes API emulator for tests and the local sandbox. */
export { KubeEmulator, type JoinResult, type KubeEmulatorOptions, type RunningKubeEmulator } from "./kube-emulator.js";
export type { UserInfo } from "./bootstrap-tokens.js";
export type { ClusterRoleBindingView, ClusterRoleView, JoinRecord, KubeInspection, NodeView, SecretView } from "./inspector.js";
export type { KubeRequestLogEntry, KubeRequestLogQuery } from "./request-log.js";
export type { FaultSpec, InjectedFault } from "../support/index.js";
