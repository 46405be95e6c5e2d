import type { ProviderAnswer, ReceivedDelivery } from "./types.js";

/** The answer of the JSON providers to a delivery that was kept: its id and how many events it holds. */
export const deliveryAnswer = (received: ReceivedDelivery): ProviderAnswer => ({
  status: 200,
  json: { delivery_id: received.deliveryId, events: received.events },
});
