import { ComingSoon } from "./comingSoon.js";

/** Placeholder until the Suppressions screen is built (see docs/console.md, "Adding a screen"). */
export function Suppressions() {
  return <ComingSoon title="Suppressions" />;
}
