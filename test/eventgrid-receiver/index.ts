/** An Event Grid topic's publishing endpoint for the real publisher client (CloudEvent schema); see README. */
export { EVENTGRID_AUDIENCE, MAX_BATCH_BYTES, startEventGridReceiver, type Delivery, type EventGridReceiver, type ReceivedCloudEvent } from "./receiver.js";
