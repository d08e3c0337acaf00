import type { FastifyInstance } from 'fastify';
import type { SchedulesLoop } from '../../loops/schedules.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, nameParam } from '../schemas.ts';

const runSchema = {
  type: 'object',
  required: ['at', 'action', 'vms', 'failed', 'skipped'],
  properties: {
    at: { type: 'number' },
    action: { type: 'string', enum: ['stop', 'start', 'window-open', 'window-close', 'drill'] },
    vms: { type: 'array', items: { type: 'string' } },
    failed: {
      type: 'array',
      items: {
        type: 'object',
        required: ['vm', 'error'],
        properties: { vm: { type: 'string' }, error: { type: 'string' } },
      },
    },
    refused: {
      type: 'array',
      items: {
        type: 'object',
        required: ['vm', 'reason'],
        properties: { vm: { type: 'string' }, reason: { type: 'string' } },
      },
    },
    skipped: { type: ['string', 'null'] },
  },
} as const;

/** A VM schedule, a scheduled drill or a maintenance window (`kind`), with its next times and last 20 runs. */
const scheduleSchema = {
  type: 'object',
  required: ['name', 'kind', 'timeZone', 'runs'],
  properties: {
    name: { type: 'string' },
    kind: { type: 'string', enum: ['vm-schedule', 'drill', 'maintenance-window'] },
    vms: { type: 'array', items: { type: 'string' }, description: 'vm-schedule, drill' },
    hosts: { type: 'array', items: { type: 'string' }, description: 'maintenance-window' },
    stop: { type: ['string', 'null'], description: 'vm-schedule: cron' },
    start: { type: ['string', 'null'], description: 'cron' },
    skipHolidays: { type: 'boolean' },
    scenario: { type: 'string', description: 'drill' },
    count: { type: 'integer', description: 'drill' },
    durationMinutes: { type: 'number', description: 'maintenance-window' },
    moveBack: { type: 'boolean', description: 'maintenance-window' },
    timeZone: { type: 'string' },
    nextStop: { type: ['number', 'null'] },
    nextStart: { type: ['number', 'null'] },
    nextOpen: { type: ['number', 'null'] },
    openUntil: { type: ['number', 'null'], description: 'maintenance-window: when an open window closes' },
    runs: { type: 'array', items: runSchema },
  },
} as const;

export function scheduleRoutes(app: FastifyInstance, schedules: SchedulesLoop): void {
  app.get(
    '/v1/schedules',
    {
      config: { action: 'host.read' },
      schema: {
        tags: ['schedules'],
        operationId: 'listSchedules',
        summary: 'VM schedules and maintenance windows, with next times and last runs',
        response: {
          200: {
            description: 'Every schedule, drill and window of the config',
            type: 'object',
            required: ['schedules'],
            properties: { schedules: { type: 'array', items: scheduleSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async () => ({ schedules: await schedules.describe() }),
  );
  app.get(
    '/v1/schedules/:name',
    {
      config: { action: 'host.read' },
      schema: {
        tags: ['schedules'],
        operationId: 'getSchedule',
        summary: 'One schedule, scheduled drill or maintenance window',
        params: nameParam,
        response: { 200: { description: 'The schedule', ...scheduleSchema }, ...errorResponses },
      },
    },
    async (req) => {
      const { name } = req.params as { name: string };
      const s = (await schedules.describe()).find((x) => (x as { name: string }).name === name);
      if (!s) throw new ApiError(404, 'not_found', `no schedule or maintenance window named "${name}"`);
      return s;
    },
  );
}
