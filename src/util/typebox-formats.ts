/**
 * The string formats the project's TypeBox schemas use, registered with
 * TypeBox itself: schemas live below the HTTP layer and are checked in
 * processes that never load Elysia (which registers its own formats only when
 * imported, and keeps a format already set).
 */
import { FormatRegistry } from "@sinclair/typebox";

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

if (!FormatRegistry.Has("date-time")) {
  FormatRegistry.Set("date-time", (value) => DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)));
}

/** A string schema option: an RFC 3339 date-time, as `new Date().toISOString()` writes it. */
export const DATE_TIME_FORMAT = "date-time";
