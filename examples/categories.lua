-- categories.lua: selective receive with acoro.receive_match.
--
-- Shows: a receiver picking the messages it wants first (even numbers) while the others
-- (odd numbers) wait in its mailbox, in arrival order, until it asks for them.
-- The sender sends 1..10 in mixed order, a little at a time.
--
-- Run: build/acoro examples/categories.lua

local acoro = require "acoro"

local numbers = { 7, 2, 9, 4, 1, 10, 3, 6, 5, 8 }

local function is_even(n) return n % 2 == 0 end

local function receiver(total)
  local evens = 0
  for _, n in ipairs(numbers) do
    if is_even(n) then evens = evens + 1 end
  end
  -- First the even numbers, wherever they are in the mailbox (or still to come) ...
  for _ = 1, evens do
    print("even: " .. acoro.receive_match(is_even))
  end
  -- ... then the rest, which kept their arrival order.
  for _ = evens + 1, total do
    print("odd: " .. acoro.receive())
  end
end

local r = acoro.spawn(receiver, #numbers)
for _, n in ipairs(numbers) do
  r:send(n)
  acoro.sleep(0.01) -- messages arrive while the receiver is already waiting
end
