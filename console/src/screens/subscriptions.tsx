import { ComingSoon } from "./comingSoon.js";

/** Placeholder until the Subscriptions screen is built (see docs/console.md, "Adding a screen"). */
export function Subscriptions() {
  return <ComingSoon title="Subscriptions" />;
}
