/*
 * lease.pml: a model of cachelock's lease protocol on the Redis store (issue #17, part 3).
 *
 * Checked exhaustively by spin (see check.sh and README.md in this directory). It proves
 * properties of the protocol AS MODELLED here, not of the Rust code; each piece below says
 * which part of the Rust code it stands for, so that a reader can judge the mapping.
 *
 * The pieces:
 *   Clock      the store's clock (`now`) and every client's local clock (`lcl[i]`), in ticks.
 *   Client(i)  a process holding locks: claim, renew (extend), release, the lost signal, and
 *              its work, which writes to a fenced resource while it believes it holds.
 *   Store(i)   the Redis server executing client i's requests: each request is one atomic
 *              step, as a Lua script is (cachelock/src/redis/scripts.rs).
 *   Network    loses any request or reply at any moment; delays are free (see below).
 *   Resource   a downstream store that accepts a write only with a fence higher than every
 *              fence it applied so far.
 *   Monitor    asserts the properties in every reachable state.
 *
 * Delays and pauses: no process is ever obliged to move (no fairness is assumed), and the
 * clock may tick between any two steps. So a message in flight may stay there for any
 * number of ticks, a client may pause anywhere for any time (or crash: never move again),
 * and the store may answer late. Only two things are bounded, both as assumptions:
 *   - SIGDELAY: the lost signal reaches the work within SIGDELAY ticks of the lost time
 *     (the margin exists to cover this; see the Clock's guard);
 *   - a fence unit: at most FPT grants per tick of the server clock (Redis' TIME is in
 *     microseconds and a script call takes longer than that).
 * Time is bounded: the store clock stops at MAXT (a bounded model check).
 *
 * Build options (spin -D...): TIMING / FENCING pick the configuration (see below; check.sh
 * checks (a) and (b) with TIMING=1 FENCING=0 and (c) with TIMING=0 FENCING=1); PROP_A,
 * PROP_B, PROP_C select the property asserted (none selected = all); MUTANT_* break one
 * piece of the protocol (check.sh --mutants requires each to be caught, except
 * MUTANT_EXTEND_UNCHECKED, which survives for a reason given in README.md); WITNESS_* assert
 * that something interesting never happens, so that its failure shows the model reaches it.
 *
 * The properties (asserted by the Monitor, and in Store / Resource for (c)):
 *   (a) no two clients believe they hold at the same moment;
 *   (b) a client that believes it holds holds by the store's clock: the key holds its token
 *       and has not run out (so none believes past its lease);
 *   (c) fences only grow, across a restart that loses the key and the counter; and the fenced
 *       resource never applies a write after a write of a later lease.
 *   (a) and (b) are asserted in runs without a restart (the store must keep what it
 *   acknowledged); (c) in every run.
 *
 * Known deviation: a grant received when the local clock is already past lost_at is marked
 * lost at once here; in the code is_lost() is true at once, and Guard::lost() completes when
 * its timer (on Tokio) or the renewer thread (elsewhere) gets to it (README.md, "What is
 * assumed").
 */

#ifndef N
#define N 2            /* clients (2 or 3) */
#endif
#ifndef TTL
#define TTL 3          /* the lock's TTL in ticks */
#endif
#ifndef MARGIN
#define MARGIN 1       /* lost_margin in ticks (Policy::lost_margin, lease.rs) */
#endif
#ifdef MUTANT_NO_MARGIN
#undef MARGIN
#define MARGIN 0       /* mutant: the lost signal comes at the local deadline itself */
#endif
#ifndef SIGDELAY
#define SIGDELAY 1     /* the lost signal reaches the work at most this late (ticks) */
#endif
#ifndef MAXT
#define MAXT 5         /* the store clock stops here: the time bound of the check */
#endif
#ifndef GMAX
#define GMAX 2         /* claim attempts per client (each with a fresh owner token) */
#endif
#ifndef FPT
#define FPT 2          /* fence units per tick: at most FPT grants per tick */
#endif
#ifndef FAST
#define FAST 0         /* extra ticks a client clock may run ahead (a faster local clock) */
#endif

/* Two configurations keep the state space small; each property is checked in the one
   that contains everything it depends on:
   TIMING=1 FENCING=0 for (a) and (b): clocks, deadlines, renewal and the lost signal;
     no fences, no writes, no restart (a and b assume the store keeps what it acknowledged).
   TIMING=0 FENCING=1 for (c): fences, the restart, writes to the resource; the client's
     timing is left out and its work may write at ANY time while it has a grant, also long
     after the lease ran out (an over-approximation: fencing must hold whatever the work
     believes), so no renewal, no local clock, no lost signal are needed. */
#ifndef TIMING
#define TIMING 1
#endif
#ifndef FENCING
#define FENCING 1
#endif
#define WRITES   FENCING
#define RESTARTS FENCING

#if !TIMING
#undef FAST
#define FAST 0
#endif

#if !defined(PROP_A) && !defined(PROP_B) && !defined(PROP_C)
#define PROP_A
#define PROP_B
#define PROP_C
#endif

/* client phases */
#define IDLE     0
#define CLAIMING 1
#define HOLD     2

/* reply kinds */
#define NONE 0
#define NIL  1         /* refused (the key is held) / extend answered 0 */
#define OK   2         /* granted / extend answered 1 */

/* ---- the store (a Redis server): one key, its fencing counter ------------------------- */
byte now = 1;          /* the store's clock, in ticks (Redis' own clock: PX, PEXPIRE, TIME);
                          it starts at 1, not 0: the real one is far past the counter's start */
byte owner;            /* 0: no key; i+1: the key holds client i's token of attempt ogen */
byte ogen;
byte exp;              /* the key runs out at store time exp (SET PX / PEXPIRE) */
byte counter;          /* the fencing counter key (KEYS[2] of the CLAIM script) */
bool down;             /* restarted, not answering until the next tick */
byte restarts;         /* at most one restart per run */
byte grants_tick;      /* grants in the current tick (at most FPT, see above) */

/* ---- each client: its lease as lease.rs keeps it ---------------------------------------- */
byte lcl[N] = 1;       /* the client's local clock (Instant::now()), started with the store's */
byte phase[N];
byte gen[N];           /* the current attempt: owner token = (client, gen) (token.rs: fresh per claim) */
byte sent[N];          /* local time the claim was sent (Attempts::claim: `started`) */
byte dl[N];            /* local deadline: send time + TTL (Lease::expires_at) */
bool lost[N];          /* the lost flag, as the work sees it (Lease::lost / mark_lost) */
byte fence[N];         /* the fence of the held lease */
byte ext_sent[N];      /* local time the extend in flight was sent (Renewable::step `now`) */

/* ---- messages in flight: at most one of each kind per client ---------------------------- */
bool creq[N]; byte creq_g[N];                    /* claim request, with its attempt */
byte crep[N]; byte crep_g[N]; byte crep_f[N];    /* claim reply, attempt, fence */
byte crep_x[N];                                  /* ghost: the grant's index */
bool ereq[N]; byte ereq_g[N];                    /* extend request */
byte erep[N]; byte erep_g[N];                    /* extend reply */
bool rreq[N]; byte rreq_g[N];                    /* release request (its reply is not used) */
bool wreq[N]; byte wreq_f[N]; byte wreq_x[N];    /* a write to the resource: fence, ghost index */

/* ---- the fenced resource ----------------------------------------------------------------- */
byte rmax;             /* the highest fence applied */

/* ---- ghosts: bookkeeping for the properties only ----------------------------------------- */
byte grants;           /* grants so far: a lease's index orders leases by the store's grant order */
byte gidx[N];          /* the index of client i's lease */
byte maxf;             /* the highest fence ever handed out */
byte rx;               /* the index of the lease whose write the resource applied last */
byte fastused;         /* extra ticks of the client clocks used */
bool witnessed;        /* for the WITNESS_* builds */
bool held0;            /* WITNESS_HANDOVER: client 0 has held a lease */
bool slowed;           /* MUTANT_SLOW_CLOCK: the store's clock skipped ahead */

#define lost_at(i)   (dl[i] - MARGIN)
/* client i believes it holds: it won a claim, has not let go, and the lost signal has not
   reached its work (Guard::lost() has not completed). */
#define believes(i)  (phase[i] == HOLD && !lost[i])
/* the store's view: the key holds client i's current token and has not run out */
#define store_has(i) (owner == i + 1 && ogen == gen[i] && now < exp)

/* A clock may move only if no believing client would thereby be past lost_at + SIGDELAY:
   this is the bound on the lost signal's latency (an assumption). */
#define sig_ok(i)    (!TIMING || !believes(i) || lcl[i] + 1 < lost_at(i) + SIGDELAY)
#if N == 2
#define all_sig_ok   (sig_ok(0) && sig_ok(1))
#else
#define all_sig_ok   (sig_ok(0) && sig_ok(1) && sig_ok(2))
#endif

/* Clock. One tick advances the store's clock and every client's clock together (equal
   rates); a client's clock may also tick on its own, up to FAST times in a run (a client
   clock faster than the store's). The model never lets the store's clock run ahead of a
   client's: that is the assumption "local clocks are not slower than the store's"
   (MUTANT_SLOW_CLOCK drops it). Keys run out by the store's clock: at the tick that reaches
   exp the key is gone (Redis expires lazily, but no command sees a key past its PTTL). */
active proctype Clock() {
    byte i;
end:
    do
    :: atomic { now < MAXT && all_sig_ok ->
           now++;
           i = 0;
           do
           :: i < N && TIMING -> lcl[i]++; i++
           :: else -> break
           od;
           i = 0;
           if
           :: owner != 0 && now >= exp -> owner = 0; ogen = 0; exp = 0
           :: else
           fi;
           down = false;
           grants_tick = 0 }
    :: atomic { TIMING && fastused < FAST && now < MAXT && all_sig_ok ->
           fastused++;
           if
           :: lcl[0]++
           :: lcl[1]++
#if N == 3
           :: lcl[2]++
#endif
           fi }
#ifdef MUTANT_SLOW_CLOCK
    :: atomic { !slowed && now < MAXT ->
           /* mutant: the store's clock runs one tick ahead of every client's, once */
           slowed = true;
           now++;
           if
           :: owner != 0 && now >= exp -> owner = 0; ogen = 0; exp = 0
           :: else
           fi;
           down = false;
           grants_tick = 0 }
#endif
    /* A restart that loses data (no persistence, FLUSHALL, a fail-over to a replica that
       missed the write): the key and the fencing counter are gone; the server's clock goes
       on. It takes at least one tick (it answers again from the next tick). */
    :: atomic { RESTARTS && restarts < 1 && !down ->
           restarts++; down = true; owner = 0; ogen = 0; exp = 0; counter = 0 }
    od
}

/* Store(i): the Redis server running client i's requests, one atomic step each. */
proctype Store(byte i) {
    byte f;
end:
    do
    /* CLAIM (scripts.rs): SET key token NX PX ttl; if it stored the value,
       fence = max(counter + 1, TIME in µs), SET counter fence, reply the fence; else nil.
       Here TIME in fence units is FPT * now. */
    :: atomic { !down && creq[i] && crep[i] == NONE && (owner != 0 || grants_tick < FPT) ->
           creq[i] = false;
           crep_g[i] = creq_g[i]; creq_g[i] = 0;
           if
           :: owner != 0 -> crep[i] = NIL
           :: else ->
               owner = i + 1; ogen = crep_g[i]; exp = now + TTL;
#if defined(MUTANT_FENCE_NO_FLOOR)
               f = counter + 1;                 /* mutant: no clock floor */
#elif defined(MUTANT_FENCE_NO_INCR)
               f = (counter > FPT * now -> counter : FPT * now);   /* mutant: no +1 */
#else
               f = (counter + 1 > FPT * now -> counter + 1 : FPT * now);
#endif
               counter = (FENCING -> f : 0);
               grants_tick++;
#ifdef PROP_C
               /* (c), the store's half: every fence handed out is higher than every
                  earlier one, across the restart too (the clock floor). */
               assert(!FENCING || f > maxf);
#endif
               maxf = (FENCING && f > maxf -> f : maxf);
               grants = (FENCING -> grants + 1 : 0);
#ifdef WITNESS_GRANT_AFTER_RESTART
               if
               :: restarts > 0 && grants >= 2 -> witnessed = true
               :: else
               fi;
#endif
               crep[i] = OK; crep_f[i] = (FENCING -> f : 0); crep_x[i] = grants
           fi;
           f = 0 }
    /* EXTEND (scripts.rs): PEXPIRE key ttl if the key holds the token; reply 1 or 0. */
    :: atomic { !down && ereq[i] && erep[i] == NONE ->
           ereq[i] = false;
           erep_g[i] = ereq_g[i]; ereq_g[i] = 0;
           if
#ifdef MUTANT_EXTEND_UNCHECKED
           :: owner != 0 -> exp = now + TTL; erep[i] = OK    /* mutant: whoever holds it */
#else
           :: owner == i + 1 && ogen == erep_g[i] -> exp = now + TTL; erep[i] = OK
#endif
           :: else -> erep[i] = NIL
           fi }
    /* RELEASE (scripts.rs): DEL key if it holds the token, in one script: compare, then
       delete. (The reply, and the resent form that counts an absent key as released, change
       nothing here: the client has let go already.) */
    :: atomic { !down && rreq[i] ->
           rreq[i] = false;
           if
#ifdef MUTANT_RELEASE_UNCHECKED
           :: owner != 0 -> owner = 0; ogen = 0; exp = 0   /* mutant: deletes whoever holds it */
#else
           :: owner == i + 1 && ogen == rreq_g[i] -> owner = 0; ogen = 0; exp = 0
#endif
           :: else
           fi;
           rreq_g[i] = 0 }
    od
}

/* Client(i): the lock's user. Every step is optional and may come after any pause. */
proctype Client(byte i) {
end:
    do
    /* Attempts::claim (acquire.rs): note the local send time, then send the claim with a
       fresh token. */
    :: atomic { phase[i] == IDLE && gen[i] < GMAX && !creq[i] && crep[i] == NONE ->
           gen[i]++; phase[i] = CLAIMING; sent[i] = (TIMING -> lcl[i] : 0);
           creq[i] = true; creq_g[i] = gen[i] }
    /* The claim's reply. A grant that comes back after the whole TTL is refused and given
       back (is_late / late_grant, acquire.rs). Otherwise the lease starts: its deadline is
       the SEND time + TTL (Lease::new with acquired_at = started; Lease::expires_at), and it
       is lost at once if that is already within the margin. */
    :: atomic { crep[i] != NONE ->
           if
           :: phase[i] == CLAIMING && crep_g[i] == gen[i] && crep[i] == OK ->
               if
               :: TIMING && lcl[i] >= sent[i] + TTL ->
                   phase[i] = IDLE; sent[i] = 0;
                   if
                   :: !rreq[i] -> rreq[i] = true; rreq_g[i] = gen[i]
                   :: else          /* the give-back is lost: the key runs out by itself */
                   fi
               :: else ->
                   phase[i] = HOLD; fence[i] = crep_f[i]; gidx[i] = crep_x[i];
#ifdef WITNESS_HANDOVER
                   held0 = held0 || i == 0;
#endif
#ifdef MUTANT_DEADLINE_FROM_RECEIPT
                   dl[i] = lcl[i] + TTL;            /* mutant: counted from the reply */
#else
                   dl[i] = sent[i] + TTL;
#endif
                   sent[i] = 0;
                   lost[i] = (TIMING && lcl[i] >= lost_at(i));
                   dl[i] = (TIMING -> dl[i] : 0)
               fi
           :: phase[i] == CLAIMING && crep_g[i] == gen[i] && crep[i] == NIL ->
               phase[i] = IDLE; sent[i] = 0         /* held by another: try again later */
           :: else                                  /* a reply to an attempt given up */
           fi;
           crep[i] = NONE; crep_g[i] = 0; crep_f[i] = 0; crep_x[i] = 0 }
    /* A claim whose reply never comes (lost request or reply): the client gives up and
       gives the claim back, owner-checked (give_back_failed, acquire.rs). */
    :: atomic { phase[i] == CLAIMING && !rreq[i] ->
           phase[i] = IDLE; sent[i] = 0; rreq[i] = true; rreq_g[i] = gen[i] }
    /* The renewer (Renewable::step, lease.rs): before lost_at, extend with the full TTL,
       noting when it started. The real renewer does so a third of the TTL after the last
       renewal (renew_interval) and retries sooner after an error; here it may renew at any
       time before lost_at, which includes those schedules. */
    :: atomic { TIMING && believes(i) && lcl[i] < lost_at(i) && !ereq[i] && erep[i] == NONE ->
           ereq[i] = true; ereq_g[i] = gen[i]; ext_sent[i] = lcl[i] }
    /* The extend's reply: 1 moves the deadline to its send time + TTL (Lease::extended);
       0 marks the lease lost (mark_lost). A reply to an earlier lease, or one that comes
       after the lease was lost or let go, changes nothing (after_renewal / done). */
    :: atomic { erep[i] != NONE ->
           if
           :: believes(i) && erep_g[i] == gen[i] && erep[i] == OK ->
#ifdef WITNESS_RENEWED
               if
               :: ext_sent[i] + TTL > dl[i] -> witnessed = true
               :: else
               fi;
#endif
#ifdef MUTANT_DEADLINE_FROM_RECEIPT
               dl[i] = lcl[i] + TTL
#else
               dl[i] = ext_sent[i] + TTL
#endif
           :: believes(i) && erep_g[i] == gen[i] && erep[i] == NIL -> lost[i] = true
           :: else
           fi;
           erep[i] = NONE; erep_g[i] = 0; ext_sent[i] = 0 }
    /* The lost signal: at lost_at = deadline - lost_margin (Lease::lost_at) the renewer
       marks the lease lost and wakes Guard::lost(). It may come late, by at most SIGDELAY
       ticks (the Clock waits for it). */
    :: atomic { TIMING && believes(i) && lcl[i] >= lost_at(i) -> lost[i] = true }
    /* The work: while it believes it holds, it sends a write carrying its fence to the
       resource. The write may land any time later (a pause between the check and the
       write, a slow network): that is what fencing is for. */
    :: atomic { WRITES && believes(i) && !wreq[i] ->
           wreq[i] = true; wreq_f[i] = fence[i]; wreq_x[i] = gidx[i] }
    /* Guard::release / drop: send the owner-checked release and let go. */
    :: atomic { phase[i] == HOLD && !rreq[i] ->
           phase[i] = IDLE; lost[i] = false; dl[i] = 0; fence[i] = 0; gidx[i] = 0;
           rreq[i] = true; rreq_g[i] = gen[i] }
    od
}

/* Network: any request or reply may be lost at any moment (a dropped connection, a
   timeout). A lost write to the resource is harmless and not modelled. */
active proctype Network() {
end:
    do
    :: atomic { creq[0] -> creq[0] = false; creq_g[0] = 0 }
    :: atomic { crep[0] != NONE -> crep[0] = NONE; crep_g[0] = 0; crep_f[0] = 0; crep_x[0] = 0 }
    :: atomic { ereq[0] -> ereq[0] = false; ereq_g[0] = 0; ext_sent[0] = 0 }
    :: atomic { erep[0] != NONE -> erep[0] = NONE; erep_g[0] = 0; ext_sent[0] = 0 }
    :: atomic { rreq[0] -> rreq[0] = false; rreq_g[0] = 0 }
    :: atomic { creq[1] -> creq[1] = false; creq_g[1] = 0 }
    :: atomic { crep[1] != NONE -> crep[1] = NONE; crep_g[1] = 0; crep_f[1] = 0; crep_x[1] = 0 }
    :: atomic { ereq[1] -> ereq[1] = false; ereq_g[1] = 0; ext_sent[1] = 0 }
    :: atomic { erep[1] != NONE -> erep[1] = NONE; erep_g[1] = 0; ext_sent[1] = 0 }
    :: atomic { rreq[1] -> rreq[1] = false; rreq_g[1] = 0 }
#if N == 3
    :: atomic { creq[2] -> creq[2] = false; creq_g[2] = 0 }
    :: atomic { crep[2] != NONE -> crep[2] = NONE; crep_g[2] = 0; crep_f[2] = 0; crep_x[2] = 0 }
    :: atomic { ereq[2] -> ereq[2] = false; ereq_g[2] = 0; ext_sent[2] = 0 }
    :: atomic { erep[2] != NONE -> erep[2] = NONE; erep_g[2] = 0; ext_sent[2] = 0 }
    :: atomic { rreq[2] -> rreq[2] = false; rreq_g[2] = 0 }
#endif
    od
}

/* Resource: applies a write only if its fence is higher than every fence applied so far
   (the check a fenced downstream store makes with the fencing token); equal or lower is
   rejected. */
proctype Resource(byte i) {
end:
    do
    :: atomic { wreq[i] ->
           if
#ifdef MUTANT_RESOURCE_UNCHECKED
           :: true ->                               /* mutant: applies every write */
#else
           :: wreq_f[i] > rmax ->
#endif
#ifdef PROP_C
               /* (c), the resource's half: a write is never applied after a write of a
                  LATER lease (by the store's grant order): a stale holder's write never
                  overwrites its successor's. */
               assert(wreq_x[i] > rx);
#endif
               rmax = (wreq_f[i] > rmax -> wreq_f[i] : rmax); rx = wreq_x[i]
           :: else
#ifdef WITNESS_STALE_REJECTED
               ; if
               :: wreq_x[i] < rx -> witnessed = true
               :: else
               fi
#endif
           fi;
           wreq[i] = false; wreq_f[i] = 0; wreq_x[i] = 0 }
    od
}

/* Monitor: the properties (a) and (b), asserted in every reachable state. Both assume a
   store that keeps what it acknowledged, so they are asserted for runs without a restart
   (after a restart only fencing, (c), still holds: it is asserted always). */
active proctype Monitor() {
end:
    do
    :: atomic {
#ifdef PROP_A
        /* (a) no two clients believe they hold at the same moment */
        assert(restarts > 0 || !(believes(0) && believes(1)));
#if N == 3
        assert(restarts > 0 || !(believes(0) && believes(2)));
        assert(restarts > 0 || !(believes(1) && believes(2)));
#endif
#endif
#ifdef PROP_B
        /* (b) a client that believes it holds does hold by the store's clock: the key holds
           its token and has not run out; so no client believes past its lease. */
        assert(restarts > 0 || !believes(0) || store_has(0));
        assert(restarts > 0 || !believes(1) || store_has(1));
#if N == 3
        assert(restarts > 0 || !believes(2) || store_has(2));
#endif
#endif
#ifdef WITNESS_HANDOVER
        assert(!(believes(1) && held0));
#endif
        assert(!witnessed);
        skip }
    od
}

init {
    atomic {
        run Store(0); run Store(1);
        run Client(0); run Client(1);
        run Resource(0); run Resource(1);
#if N == 3
        run Store(2); run Client(2); run Resource(2);
#endif
    }
}
