// Reports of training and evaluation: HTML pages, SVG plots, contact sheets, videos, meshes.
export { ReportError } from './errors.js';
export type { ReportErrorCode } from './errors.js';
export { linePlot, niceTicks, escapeXml } from './svg.js';
export type { Series, PlotMarker, PlotOptions } from './svg.js';
export { parseLog, readLog, seriesOf, flatten } from './log.js';
export type { LogRecord } from './log.js';
export { contactSheet, diffImage, triptych } from './images.js';
export type { SheetOptions } from './images.js';
export { checkFfmpeg, writeSideBySide, writeVideo } from './video.js';
export type { VideoOptions } from './video.js';
export { checkMesh, meshToObj, meshToPly, writeMesh } from './mesh.js';
export type { Mesh } from './mesh.js';
export { logPlots, methodsTable, reportRunDir, scheduleMarkers, tableHtml, writeReport } from './html.js';
export type { MetricsTable, ReportFrame, ReportInput } from './html.js';
