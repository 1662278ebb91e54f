/* runner.c: runs each core test in a process of its own, with a time
 * limit, and prints a summary line like the Lua specs'. */
#include "test.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_LIST(XX)                                                          \
  XX(ready_queue_is_fifo)                                                      \
  XX(yield_goes_behind_ready)                                                  \
  XX(mailbox_fifo_and_selective_take)                                          \
  XX(send_wakes_receiver_once)                                                 \
  XX(send_to_dead_is_refused)                                                  \
  XX(mailbox_limit_drops_newest_and_counts)                                    \
  XX(mailbox_bytes_from_peers_over_limit_until_half)                           \
  XX(timed_wait_never_ends_early)                                              \
  XX(wait_zero_timeout_wakes_next_turn)                                        \
  XX(timer_due_before_poll_does_not_block)                                     \
  XX(timed_out_runs_before_a_burst_of_ready_work)                              \
  XX(timer_heap_orders_by_deadline_then_arming)                                \
  XX(timer_heap_equal_deadlines_fire_first_in_first_out)                       \
  XX(timer_heap_cancel_anywhere_keeps_the_rest_in_order)                       \
  XX(timer_heap_many_timers_and_far_future)                                    \
  XX(timed_waits_wake_in_deadline_order_never_early)                           \
  XX(timer_cancelled_by_a_wake_neither_fires_nor_keeps_the_loop)               \
  XX(far_future_timer_waits_and_cancels)                                       \
  XX(join_wakes_on_exit)                                                       \
  XX(join_of_dead_is_edead)                                                    \
  XX(join_releases_target)                                                     \
  XX(deliver_wakes_sender_when_taken)                                          \
  XX(deliver_to_dying_receiver_reports_dead)                                   \
  XX(interrupt_overrides_ready_reason)                                         \
  XX(ids_never_reused)                                                         \
  XX(find_by_id_after_many_removals)                                           \
  XX(find_by_id_index_kept_after_first_lookup)                                 \
  XX(register_locate_unregister)                                               \
  XX(register_name_taken)                                                      \
  XX(exit_unregisters)                                                         \
  XX(daemons_do_not_keep_run_alive)                                            \
  XX(deadlock_is_reported)                                                     \
  XX(stop_returns_code)                                                        \
  XX(signal_stop_ends_the_run_and_says_which)                                  \
  XX(signal_queue_wakes_the_waiter_and_repeats_count_once)                     \
  XX(monitors_are_kept_in_order)                                               \
  XX(restart_keeps_id_and_mailbox)                                             \
  XX(records_outlive_engine_free)                                              \
  XX(strerror_names_every_code)                                                \
  XX(fs_open_missing_is_enoent)                                                \
  XX(file_write_seek_read_back)                                                \
  XX(file_fill_all_reads_the_rest_in_one_operation)                            \
  XX(fs_ops_released_before_done)                                              \
  XX(file_outlives_engine_free)                                                \
  XX(fs_lstat_chmod_utime)                                                     \
  XX(file_chmod_utime_after_swap_for_link)                                     \
  XX(dir_handle_never_follows_links)                                           \
  XX(work_released_before_done)                                                \
  XX(pool_size_is_fixed_once_used)                                             \
  XX(wire_check_accepts_every_kind)                                            \
  XX(wire_check_truncated_every_prefix)                                        \
  XX(wire_check_declared_lengths_beyond_the_bytes)                             \
  XX(wire_check_declared_counts_beyond_the_bytes)                              \
  XX(wire_check_map_with_odd_count)                                            \
  XX(wire_check_100000_nested_arrays)                                          \
  XX(wire_check_depth_limits)                                                  \
  XX(wire_check_size_limit)                                                    \
  XX(wire_check_reserved_byte_and_short_reason)                                \
  XX(wire_check_random_bytes)                                                  \
  XX(net_frame_codec_checks_lengths_before_buffering)                          \
  XX(net_exchange_keeps_order_both_ways)                                       \
  XX(net_direct_writes_short_or_whole_keep_order)                              \
  XX(net_large_message_split_while_heartbeats_continue)                        \
  XX(net_wrong_secret_refused_both_log)                                        \
  XX(net_secret_against_no_secret_refused)                                     \
  XX(net_version_mismatch_refused)                                             \
  XX(net_preauth_garbage_closes_others_unharmed)                               \
  XX(net_idle_connections_lock_out_no_peer)                                    \
  XX(net_killed_peer_is_down_at_once)                                          \
  XX(net_stopped_peer_is_down_within_heartbeats)                               \
  XX(net_frozen_peer_down_after_missed_heartbeats_not_more)                    \
  XX(net_simultaneous_connect_keeps_one_link)                                  \
  XX(net_busy_peer_refuses_then_writable)                                      \
  XX(net_restarted_node_is_a_new_peer)                                         \
  XX(net_stop_with_peers_connected_frees_everything)                           \
  XX(net_busy_engine_thread_keeps_peers_up)                                    \
  XX(net_close_peer_downs_both_sides_once)                                     \
  XX(net_connect_failures_are_reported)                                        \
  XX(net_ext_location_is_announced_and_known_as_itself)                        \
  XX(net_postauth_malformed_frames_close_only_that_peer)                       \
  XX(net_discovery_on_loopback_finds_each_other)                               \
  XX(net_discovery_finds_a_restarted_node_again)                               \
  XX(net_tls_exchange_keeps_order_round_trips_and_splits)                      \
  XX(net_tls_bad_certificates_refused_others_unharmed)                         \
  XX(net_tls_certificate_for_another_name_refused)                             \
  XX(net_tls_plain_and_tls_nodes_refuse_each_other)                            \
  XX(net_tls_mutual_client_without_certificate_refused)                        \
  XX(net_tls_wrong_secret_still_refused)                                       \
  XX(net_tls_handshake_bytes_and_time_are_limited)                             \
  XX(net_tls_simultaneous_connect_keeps_one_link)                              \
  XX(net_engine_reads_mixed_with_split_messages_keep_order)                    \
  XX(net_engine_reads_taken_back_from_busy_engine)                             \
  XX(net_engine_reads_off_keeps_the_net_thread_reading)                        \
  XX(net_inbound_limit_pauses_reading_until_the_engine_delivers)               \
  XX(net_inbound_limit_default_pauses_past_16mb)                               \
  XX(net_mesh_simultaneous_connects_keep_one_link_per_pair)                    \
  XX(net_mesh_discovery_converges_with_one_link_per_pair)                      \
  XX(net_link_with_traffic_sends_no_heartbeats)                                \
  XX(spin_setter_reads_sets_and_refuses)                                       \
  XX(spin_from_the_environment)                                                \
  XX(spinning_run_ends_and_sees_deadlock)                                      \
  XX(spinning_engine_takes_posts)                                              \
  XX(run_once_nowait_steps_until_done)                                         \
  XX(run_once_once_blocks_for_the_timer_and_reports_deadlock)                  \
  XX(run_once_returns_the_stop_code_once)                                      \
  XX(attached_engine_runs_inside_the_hosts_loop)                               \
  XX(posts_from_threads_lose_nothing_and_keep_each_threads_order)              \
  XX(posts_queued_before_free_still_run)                                       \
  XX(free_waits_for_a_post_still_sending)                                      \
  XX(call_completed_on_a_host_thread_wakes_only_its_waiter)                    \
  XX(call_timed_out_then_completed_frees_the_result_unread)                    \
  XX(call_released_by_its_waiter_cancels_once_then_completion_frees)           \
  XX(foreign_loop_sleeps_on_backend_fd_and_timeout)                            \
  XX(attached_engine_takes_posts_from_a_host_thread)

#define DECLARE(name) void test_##name(void);
TEST_LIST(DECLARE)
#undef DECLARE

typedef struct {
  const char *name;
  void (*fn)(void);
} test_entry_t;

static const test_entry_t tests[] = {
#define ENTRY(name) {#name, test_##name},
    TEST_LIST(ENTRY)
#undef ENTRY
};

static void host_resume(void *data, acoro_co_t *co) {
  test_task_t *t = acoro_co_host_ptr(co);
  (void)data;
  t->resumes++;
  t->step(co, acoro_co_wake_reason(co), t->arg);
}

static void host_drop(void *data, uint64_t msg) {
  (void)data;
  (void)msg;
}

acoro_engine_t *test_engine(void) {
  static const acoro_host_t host = {host_resume, host_drop, NULL};
  acoro_engine_t *e = NULL;
  ASSERT_EQ(acoro_engine_new(&host, NULL, &e), 0);
  return e;
}

/* OWNERSHIP: the task is freed with the process; tests are short-lived. */
acoro_co_t *test_spawn(acoro_engine_t *e, step_fn step, void *arg) {
  acoro_co_t *co = NULL;
  test_task_t *t = calloc(1, sizeof *t);
  ASSERT_TRUE(t != NULL);
  t->step = step;
  t->arg = arg;
  ASSERT_EQ(acoro_co_new(e, 0, &co), 0);
  acoro_co_set_host(co, 0, t);
  return co;
}

int test_resumes(acoro_co_t *co) {
  return ((test_task_t *)acoro_co_host_ptr(co))->resumes;
}

void test_step_exit(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  (void)arg;
  acoro_co_exit(co, 0);
}

void test_step_receive(acoro_co_t *co, int reason, void *arg) {
  (void)reason;
  (void)arg;
  acoro_co_wait(co, ACORO_WAIT_RECEIVE, -1);
}

static int run_one(const test_entry_t *t) {
  int status;
  pid_t pid;
  /* A child must not inherit unwritten lines: under TSan its exit writes
   * them out again, once per test. */
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    alarm(20);
    t->fn();
    _exit(0);
  }
  if (pid < 0 || waitpid(pid, &status, 0) < 0)
    return 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 1;
  if (WIFSIGNALED(status))
    fprintf(stderr, "  %s: killed by signal %d%s\n", t->name, WTERMSIG(status),
            WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
  else
    fprintf(stderr, "  %s: exit status %d\n", t->name, WEXITSTATUS(status));
  return 0;
}

int main(int argc, char **argv) {
  size_t i, n = sizeof tests / sizeof tests[0];
  int passed = 0, failed = 0;
  for (i = 0; i < n; i++) {
    if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
      continue;
    if (run_one(&tests[i])) {
      passed++;
      printf("ok %s\n", tests[i].name);
    } else {
      failed++;
      printf("FAILED %s\n", tests[i].name);
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
