-- acoro.discoro.internal: what acoro.discoro's own modules (the two sides of
-- a shared scheduler) use of it, filled by acoro.discoro when it loads; not
-- for applications.
return {}
