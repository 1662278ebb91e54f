-- acoro.dist.held: the LOCATE requests a node holds for its peers until the
-- name is registered here or the asker's deadline passes. Each costs
-- O(log n) whatever a peer sends: a set per name and per peer, and a binary
-- min-heap by deadline that drops expired ones as new ones come; past `max`
-- held for one peer, the next is refused (its asker is answered at once).
--
-- An entry {peer=, req=, key=, deadline=, hi=} is in by_key[key], in
-- by_peer[peer].entries and at heap[hi]. ENGINE THREAD ONLY.
local Held = {}
Held.__index = Held

local floor, next, pairs, setmetatable = math.floor, next, pairs, setmetatable

function Held.new(max)
  return setmetatable({ by_key = {}, by_peer = {}, heap = {}, max = max }, Held)
end

local function swap(h, i, j)
  local a, b = h[i], h[j]
  h[i], h[j], a.hi, b.hi = b, a, j, i
end

local function fix(h, i) -- moves entry i up or down to its place
  while i > 1 and h[i].deadline < h[floor(i / 2)].deadline do
    swap(h, i, floor(i / 2))
    i = floor(i / 2)
  end
  while true do
    local l, s = 2 * i, i
    if h[l] and h[l].deadline < h[s].deadline then s = l end
    if h[l + 1] and h[l + 1].deadline < h[s].deadline then s = l + 1 end
    if s == i then return end
    swap(h, i, s)
    i = s
  end
end

function Held:unhold(e)
  local set = self.by_key[e.key]
  set[e] = nil
  if next(set) == nil then self.by_key[e.key] = nil end
  local mine = self.by_peer[e.peer]
  mine.entries[e] = nil
  mine.n = mine.n - 1
  if mine.n == 0 then self.by_peer[e.peer] = nil end
  local h = self.heap
  local i, last = e.hi, #h
  if i ~= last then -- the last entry takes its place
    swap(h, i, last)
    h[last] = nil
    fix(h, i)
  else
    h[last] = nil
  end
end

-- Holds peer's request req for key until t + wait; false (not held) when
-- that peer already has `max` held here. Drops the expired ones first
-- (their askers have given up).
function Held:hold(peer, req, key, t, wait)
  local h = self.heap
  while h[1] and h[1].deadline < t do self:unhold(h[1]) end
  local mine = self.by_peer[peer]
  if mine and mine.n >= self.max then return false end
  if not mine then
    mine = { n = 0, entries = {} }
    self.by_peer[peer] = mine
  end
  local e = { peer = peer, req = req, key = key, deadline = t + wait, hi = #h + 1 }
  local set = self.by_key[key]
  if not set then
    set = {}
    self.by_key[key] = set
  end
  set[e] = true
  mine.entries[e] = true
  mine.n = mine.n + 1
  h[e.hi] = e
  fix(h, e.hi)
  return true
end

local function take_set(self, set)
  local list = {}
  for e in pairs(set) do list[#list + 1] = e end
  for i = 1, #list do self:unhold(list[i]) end
  return list
end

-- The entries held for key, no longer held (nil: none).
function Held:take(key)
  local set = self.by_key[key]
  return set and take_set(self, set)
end

-- Drops every entry of peer (it went down).
function Held:drop_peer(peer)
  local mine = self.by_peer[peer]
  if mine then take_set(self, mine.entries) end
end

return Held
