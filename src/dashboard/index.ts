/** The controller's web dashboard: a DashboardPlugin for the server (page, assets, snapshot, live stream). */
export { createDashboard, createFleetDashboard, DASHBOARD_ROUTES } from './plugin.js';
export type { DashboardOptions, GitHubBudgetSource } from './plugin.js';
export type {
  ApiBudget,
  DashboardSnapshot,
  EventPanel,
  JobPanel,
  RunnerPanel,
  ScaleSetPanel,
  SnapshotLimits,
  Totals,
} from './snapshot.js';
export type { HistoryPoint, HistoryView, SetSample } from './history.js';
