/* A run's network and plan: a fresh network from --arch, or a saved one
 * from --resume, then finishing the model's recorded plan or starting a new
 * one. */
#include <string.h>

#include "cifar.h"
#include "cli.h"
#include "nn.h"
#include "run.h"

/* --resume without --epochs: the rest of the model's plan, with the plan's
 * own seed, batch, learning rate, schedule and flips, so that the result is
 * the one the run would have given had it never stopped. */
static int finish_plan(run_state *rs, const nn_model_meta *resumed) {
    const nn_plan *p = &resumed->plan;
    options *o = &rs->o;
    if (p->epochs == 0)
        return usage_error("--resume %s: the model records no training plan (an older file); "
                           "give --epochs N",
                           o->resume);
    int left = p->first_epoch + p->epochs - resumed->epochs;
    rs->plan = *p;
    if (left <= 0) { /* killed after its last epoch: the outputs it may lack */
        o->epochs = 0;
        say(rs,
            "resume   the model has finished its plan of %d epochs: nothing to train, the "
            "outputs are written again (--epochs N trains more)\n",
            p->epochs);
        return 0;
    }
    o->epochs = left, o->seed = p->seed, o->optim.lr = p->lr, o->optim.schedule = p->schedule;
    o->flip = p->flip;
    if (p->batch != o->batch) { /* the buffers hold the plan's batch */
        char err[512];
        o->batch = p->batch;
        nn_free(rs->net);
        nn_model_meta again;
        if (nn_load(o->resume, CIFAR_SIDE, CIFAR_SIDE, o->batch, &rs->net, &again, err,
                    sizeof err)) {
            say_error("%s", err);
            return EXIT_BAD_INPUT;
        }
    }
    say(rs, "resume   finishing the model's plan: epochs %d to %d of %d\n", resumed->epochs + 1,
        p->first_epoch + p->epochs, p->first_epoch + p->epochs);
    return 0;
}

/* Before any data is read, so that a bad --arch or --resume is reported at
 * once. */
int build_network(run_state *rs, nn_model_meta *resumed) {
    char err[512];
    const options *o = &rs->o;
    int batch_cap = o->batch, r; /* evaluation runs a batch at a time too */
    if (o->resume) {
        if (nn_load(o->resume, CIFAR_SIDE, CIFAR_SIDE, batch_cap, &rs->net, resumed, err,
                    sizeof err)) {
            say_error("%s", err);
            return EXIT_BAD_INPUT;
        }
        if ((r = mode_defaults(&rs->o, resumed)) != 0) return r;
        if (!o->epochs_given && (r = finish_plan(rs, resumed)) != 0) return r;
        /* The optimiser state fits one optimiser: keep the model's, or start afresh. */
        if (!o->optimizer_given) {
            rs->o.optim.optimizer = resumed->optimizer;
        } else if (o->optim.optimizer != resumed->optimizer) {
            nn_reset_optimiser(rs->net);
            say(rs,
                "resume   the model was trained with another optimiser: its state starts afresh\n");
        }
    } else if ((r = mode_defaults(&rs->o, NULL)) != 0) {
        return r;
    } else if (nn_create(o->arch, CIFAR_SIDE, CIFAR_SIDE, o->k, batch_cap, &rs->net, err,
                         sizeof err)) {
        if (strstr(err, "out of memory")) {
            say_error("%s (batch %d)", err, o->batch);
            return EXIT_RUN_FAILED;
        }
        return usage_error("--arch: %s", err);
    } else {
        nn_init_weights(rs->net, o->seed);
    }
    /* Without --lr, the rate the network was measured to train best with. */
    if (rs->o.optim.lr == 0) rs->o.optim.lr = nn_builtin_lr(nn_spec(rs->net));
    if (!o->resume || o->epochs_given) /* a new plan: this run's epochs */
        rs->plan = (nn_plan){.first_epoch = o->resume ? resumed->epochs : 0,
                             .epochs = o->epochs,
                             .first_step = nn_steps(rs->net),
                             .seed = o->seed,
                             .batch = o->batch,
                             .lr = o->optim.lr,
                             .schedule = o->optim.schedule,
                             .flip = o->flip};
    return 0;
}
