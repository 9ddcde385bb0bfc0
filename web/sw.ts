/**
 * The page's service worker: keeps the page's own files so it opens offline after the first
 * visit. Network first (a rebuilt page is picked up at once when online), the cache when the
 * network fails. Only this origin's GET requests are handled; anything else (a weights URL)
 * goes to the network untouched.
 *
 * `web/build.ts` bundles this file as `sw.js` and defines the two constants below.
 *
 * @module
 */

/** The bundle's files (relative URLs), filled in by the build. */
declare const WEBTUNE_PRECACHE: string[];
/** A digest of the bundle, filled in by the build: a new build gets a new cache. */
declare const WEBTUNE_VERSION: string;

/**
 * The parts of the service-worker API used here. The page's files are type-checked with the DOM
 * library, which lacks the worker's types, so they are spelled out.
 */
interface ExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  request: Request;
  respondWith(r: Promise<Response>): void;
}
interface ServiceWorkerScope {
  location: Location;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  addEventListener(type: "install" | "activate", fn: (e: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", fn: (e: FetchEvent) => void): void;
}

const scope = self as unknown as ServiceWorkerScope;
const CACHE = `webtune-${WEBTUNE_VERSION}`;

scope.addEventListener("install", (e) => {
  e.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(WEBTUNE_PRECACHE)).then(() =>
      scope.skipWaiting()
    ),
  );
});

scope.addEventListener("activate", (e) => {
  e.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => scope.clients.claim()),
  );
});

scope.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== scope.location.origin) return;
  e.respondWith(
    fetch(e.request).then(async (response) => {
      if (response.ok) {
        const cache = await caches.open(CACHE);
        await cache.put(e.request, response.clone());
      }
      return response;
    }).catch(async (error) => {
      // `/` and `/index.html` are one page.
      const cached = await caches.match(e.request, { ignoreSearch: true }) ??
        (url.pathname.endsWith("/") ? await caches.match("./index.html") : undefined);
      if (cached) return cached;
      throw error;
    }),
  );
});
