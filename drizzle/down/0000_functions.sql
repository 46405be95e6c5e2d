DROP FUNCTION IF EXISTS herald_current_tenant();
--> statement-breakpoint
DROP FUNCTION IF EXISTS herald_uuidv7();
