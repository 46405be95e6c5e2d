import type { ComponentType } from "preact";
import type { Role } from "./api.js";
import { ContactTimeline, SessionTimeline } from "./screens/contactTimeline.js";
import { ConversationDetail, Conversations } from "./screens/conversations.js";
import { DeadLetters } from "./screens/deadLetters.js";
import { EventDetail } from "./screens/eventDetail.js";
import { Events } from "./screens/events.js";
import { Messages } from "./screens/messages.js";
import { Overview } from "./screens/overview.js";
import { ScheduledActions } from "./screens/scheduledActions.js";
import { Sources } from "./screens/sources.js";
import { Subscriptions } from "./screens/subscriptions.js";
import { Suppressions } from "./screens/suppressions.js";
import { Tenants } from "./screens/tenants.js";

export interface ConsoleRoute {
  /** preact-iso pattern under `base` (`/events/:id`). */
  path: string;
  component: ComponentType;
  /** The navigation link's name; routes without one (details) are reached by links. */
  nav?: string;
  /** Who sees it. @defaultValue "tenant" */
  role?: Role;
}

/**
 * Every screen of the console. A new screen is one file in screens/ and one line here; the navigation is built
 * from the `nav` entries, in this order.
 */
export const routes: ConsoleRoute[] = [
  { path: "/", component: Overview, nav: "Overview" },
  { path: "/events", component: Events, nav: "Events" },
  { path: "/events/:id", component: EventDetail },
  { path: "/contacts/:id", component: ContactTimeline },
  { path: "/sessions/:id", component: SessionTimeline },
  { path: "/messages", component: Messages, nav: "Messages" },
  { path: "/messages/:id", component: Messages },
  { path: "/subscriptions", component: Subscriptions, nav: "Subscriptions" },
  { path: "/subscriptions/:id", component: Subscriptions },
  { path: "/dead-letters", component: DeadLetters, nav: "Dead letters" },
  { path: "/dead-letters/:id", component: DeadLetters },
  { path: "/sources", component: Sources, nav: "Sources" },
  { path: "/sources/:id", component: Sources },
  { path: "/conversations", component: Conversations, nav: "Conversations" },
  { path: "/conversations/:id", component: ConversationDetail },
  { path: "/suppressions", component: Suppressions, nav: "Suppressions" },
  { path: "/scheduled-actions", component: ScheduledActions, nav: "Scheduled actions" },
  { path: "/", component: Tenants, nav: "Tenants", role: "admin" },
];
