/**
 * Every activity of the sagas, built from the clients passed in (Temporal's `createActivities(deps)`): the function
 * app's registration (functions/activities.ts) builds them from the process's services, a test may build them from
 * its own. The sagas never import this module's code, only its type, through handles.ts.
 */
import { createAccessActivities, type AccessDeps } from "./access.js";
import { createArcActivities, type ArcDeps } from "./arc.js";
import { createEventActivities, type EventsDeps } from "./events.js";
import { createKubeActivities, type KubeDeps } from "./kube.js";
import { createMailboxActivities, type MailboxDeps } from "./mailbox.js";
import { createNodePlanActivities, type NodePlanDeps } from "./node-plan.js";
import { createRecordsActivities, type RecordsDeps } from "./records.js";
import { createRemovalActivities, type RemovalDeps } from "./removal.js";

/** What the activities use of the services, all together. */
export type ActivityDeps = RecordsDeps & MailboxDeps & NodePlanDeps & ArcDeps & AccessDeps & KubeDeps & RemovalDeps & EventsDeps;

export function createAllActivities(deps: ActivityDeps) {
  return {
    ...createRecordsActivities(deps),
    ...createMailboxActivities(deps),
    ...createNodePlanActivities(deps),
    ...createArcActivities(deps),
    ...createAccessActivities(deps),
    ...createKubeActivities(deps),
    ...createRemovalActivities(deps),
    ...createEventActivities(deps),
  };
}

export type OnboardActivities = ReturnType<typeof createAllActivities>;
