#include <linux/module.h>
#include <linux/init.h>

/* vpndrv 2.0: the vendor's fix, it builds on every kernel. */
static int __init vpndrv_init(void) { return 0; }
static void __exit vpndrv_exit(void) { }
module_init(vpndrv_init);
module_exit(vpndrv_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
