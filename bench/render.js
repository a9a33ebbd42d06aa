#!/usr/bin/env node
// Re-renders the Markdown tables and the SVG chart of a suite results file (after a change to a scenario module or
// bench/lib/report.js):
//   node bench/render.js bench/results/<date>.json     writes <date>.md and <date>.svg next to it
import { readFileSync, writeFileSync } from 'node:fs'
import process from 'node:process'
import { evaluateTargets, renderMarkdown, renderSvg } from './lib/report.js'
import { scenarios } from './run.js'

const file = process.argv[2]
if (file === undefined || !file.endsWith('.json')) {
  console.error('usage: node bench/render.js <results>.json')
  process.exit(2)
}
const results = JSON.parse(readFileSync(file, 'utf8'))
results.targets = evaluateTargets(results, scenarios)
writeFileSync(file, JSON.stringify(results, null, 2) + '\n')
writeFileSync(file.replace(/\.json$/, '.md'), renderMarkdown(results, scenarios))
writeFileSync(file.replace(/\.json$/, '.svg'), renderSvg(results, scenarios))
console.error(`rendered ${file.replace(/\.json$/, '.{md,svg}')}`)
