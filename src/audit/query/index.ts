/**
 * Audit review library: the one filter, scan and aggregation code behind
 * `meshgate audit query|tail` and the admin API. docs/audit-review.md
 * describes the filters and output; this is the programmatic surface.
 */
export { matches, identityOf, isEmptyFilter, pathHasPrefix, type AuditFilter, type IdentityCondition, type StatusRange } from './filter.ts';
export { parseQuery, parseTimeFlag, QueryFlagError, QUERY_FLAGS, type QueryFlagName, type QueryFlags } from './parse-query.ts';
export { queryAudit, recordsOf, type AuditQuery, type QueryOptions, type QueryProgress, type QueryStats } from './query-audit.ts';
export { followAudit, type AuditFollow, type FollowOptions } from './follow-audit.ts';
export { aggregate, groupKey, isGroupBy, GROUP_BY, MAX_GROUPS, type Aggregation, type GroupBy, type GroupCount } from './aggregate.ts';
export type { DamagedLine, LogPosition, QueryHit, ScanStats } from './scan.ts';
export { compilePrefilter, framingProblem, type LinePrefilter } from './prefilter.ts';
export { EventTable, eventCells, fitWidths, groupTable, sanitizeCell, truncateCell, EVENT_COLUMNS } from './table.ts';
