// Grafana's published dashboard model, as a dashboard JSON file carries it.
//
// `@grafana/schema` is the package Grafana publishes its dashboard types in (generated from
// its CUE schema: the "classic" JSON model, schemaVersion 39 and on). tests/deploy/dashboard.rs
// writes each of dashboards/*.json into a TypeScript file as an object literal typed
// `DashboardFile` and runs `tsc --strict` on it: a misspelled or unknown key (an object literal
// may only name known properties), a wrong type or an enum value Grafana does not know fails.
import type { AnnotationQuery, Dashboard, DataQuery } from '@grafana/schema';

// The types declare enums (ThresholdsMode.Absolute = "absolute"); in JSON they are their
// string values. Wire<T> turns every enum into the union of its values, recursively.
export type Wire<T> = T extends string
  ? `${T}`
  : T extends (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

// The Prometheus data source's own annotation options, which Grafana's Prometheus annotation
// editor stores beside the model's fields (the query itself is in `target`).
export interface PrometheusAnnotationOptions {
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}

// An annotation's `target` is its data source's query: the model leaves its type to the data
// source (AnnotationQuery<TQuery extends DataQuery>), and types panel targets as open records;
// a Prometheus query adds `expr`, `interval` and so on to DataQuery's fields.
type DataSourceQuery = DataQuery & Record<string, unknown>;

// What Grafana's "Export for sharing externally" puts around the model, and its import reads:
// the plugins and versions the dashboard needs (and `__inputs`, the data sources to ask for).
interface ExportEnvelope {
  __requires?: { type: 'grafana' | 'datasource' | 'panel'; id: string; name: string; version: string }[];
  __inputs?: { name: string; label: string; description?: string; type: string; pluginId: string; pluginName: string }[];
}

export type DashboardFile = ExportEnvelope & Omit<Wire<Dashboard>, 'annotations'> & {
  annotations?: {
    list?: (Wire<AnnotationQuery<DataSourceQuery>> & PrometheusAnnotationOptions)[];
  };
};
