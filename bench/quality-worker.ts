// Piscina worker for the quality section: one SSIMULACRA2 + SSIM measurement per task.
export { measureQuality as default } from './quality-metric.js';
