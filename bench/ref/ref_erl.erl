%% bench/ref/ref_erl.erl: W6 (remote ping-pong) and W6s (remote stream) of
%% bench/README.md on Erlang distribution, two Erlang nodes on loopback: the
%% reference bench/run sets beside acoro's nodes (bench/w6_remote.lua) and
%% the libuv floor (bench/ref/ref_remote.c), with the same counts and the
%% same result lines.
%%
%% bench/run compiles it with erlc into a temporary directory and starts
%% the nodes itself, without epmd (-start_epmd false): the server node
%% listens for distribution on the port given by -erl_epmd_port, and the
%% client node (-dist_listen false: it only connects out) reaches it there.
%% So nothing is left running once both nodes are stopped.
%%
%%   erl ... -name w6s@127.0.0.1 -run ref_erl server
%%       registers the process w6, prints "READY" and serves until killed:
%%       {ping, From} is sent back to From; the message 1 is counted;
%%       {done, From} is answered with the count (which restarts at 0).
%%   erl ... -name w6c@127.0.0.1 -run ref_erl ping SERVERNODE [N]
%%       W6: N (100,000) round trips; prints
%%       "W6 rts=N secs=S rts_per_s=R median_us=M", then halts.
%%   erl ... -name w6c@127.0.0.1 -run ref_erl stream SERVERNODE [N]
%%       W6s: N (1,000,000) messages one way, then {done, self()}; prints
%%       "W6s msgs=N secs=S msgs_per_s=R", then halts.
%% A failure prints "ref_erl: ..." on stderr and halts with status 1.
-module(ref_erl).
-export([server/0, ping/1, stream/1]).

server() ->
    register(w6, spawn(fun() -> serve(0) end)),
    io:format("READY~n").

serve(Count) ->
    receive
        1 -> serve(Count + 1);
        {ping, From} = M -> From ! M, serve(Count);
        {done, From} -> From ! {count, Count}, serve(0)
    end.

ping([Node | Rest]) ->
    N = count(Rest, 100000),
    Srv = connect(list_to_atom(Node)),
    T0 = now_us(),
    Rtts = round_trips(Srv, N, []),
    Secs = (now_us() - T0) / 1.0e6,
    Median = lists:nth(N div 2 + 1, lists:sort(Rtts)),
    io:format("W6 rts=~b secs=~.3f rts_per_s=~b median_us=~.1f~n",
              [N, Secs, round(N / Secs), float(Median)]),
    halt(0).

round_trips(_Srv, 0, Acc) -> Acc;
round_trips(Srv, I, Acc) ->
    Me = self(),
    T = now_us(),
    Srv ! {ping, Me},
    receive {ping, Me} -> ok
    after 10000 -> fail("no answer to a round trip", [])
    end,
    round_trips(Srv, I - 1, [now_us() - T | Acc]).

stream([Node | Rest]) ->
    N = count(Rest, 1000000),
    Srv = connect(list_to_atom(Node)),
    T0 = now_us(),
    send_n(Srv, N),
    Srv ! {done, self()},
    Got = receive {count, C} -> C
          after 60000 -> fail("no count from the server", [])
          end,
    Secs = (now_us() - T0) / 1.0e6,
    Got =:= N orelse fail("the server counted ~p of ~p", [Got, N]),
    io:format("W6s msgs=~b secs=~.3f msgs_per_s=~b~n", [N, Secs, round(N / Secs)]),
    halt(0).

send_n(_Srv, 0) -> ok;
send_n(Srv, I) -> Srv ! 1, send_n(Srv, I - 1).

%% Connects to the server node (retrying: it may still be starting, at most
%% 10 s) and checks that w6 is registered there, as acoro's client connects
%% and locates before it starts the clock.
connect(Node) -> connect(Node, 100).
connect(Node, 0) -> fail("cannot reach ~p", [Node]);
connect(Node, Tries) ->
    case net_kernel:connect_node(Node) of
        true ->
            case rpc:call(Node, erlang, whereis, [w6], 10000) of
                Pid when is_pid(Pid) -> Pid;
                Other -> fail("w6 not found at ~p: ~p", [Node, Other])
            end;
        _ -> timer:sleep(100), connect(Node, Tries - 1)
    end.

count([], Default) -> Default;
count([S | _], _) -> list_to_integer(S).

now_us() -> erlang:monotonic_time(microsecond).

fail(Fmt, Args) ->
    io:format(standard_error, "ref_erl: " ++ Fmt ++ "~n", Args),
    halt(1).
