import { ComingSoon } from "./comingSoon.js";

/** Placeholder until the Scheduled actions screen is built (see docs/console.md, "Adding a screen"). */
export function ScheduledActions() {
  return <ComingSoon title="Scheduled actions" />;
}
